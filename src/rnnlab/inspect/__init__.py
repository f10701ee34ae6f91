"""Seeing inside a recurrent network: functions of plain NumPy arrays, no model needed.

- :mod:`~rnnlab.inspect.features`: text features per token and the cells that follow them.
- :mod:`~rnnlab.inspect.activations_page`: one self-contained HTML page colouring the text
  by a chosen cell (Karpathy, Johnson & Fei-Fei 2015; LSTMVis).
- :mod:`~rnnlab.inspect.gates`: how saturated each gate is, per layer, with histograms.
- :mod:`~rnnlab.inspect.gradient_flow`: how fast the gradient fades going back in time.
- :mod:`~rnnlab.inspect.browser`: open a page in headless Chromium (tests, screenshots).

Those five never import a model: models and the CLI call them, never the other way round.
The glue that does run a model sits beside them:

- :mod:`~rnnlab.inspect.model`: runs a :class:`~rnnlab.models.LanguageModel` over text
  windows and reads the layer's public ``states``, ``gate_values`` and ``state_grads``.
- :mod:`~rnnlab.cli.inspect`: ``rnnlab inspect gradients | gates | activations``.

The shapes the array functions take (L layers,
T steps, N sequences, H cells, V vocabulary size, K predictions per step)::

    activations_page(tokens (T,), level, {"h": (L, T, H), "c": (L, T, H)},
                     top_tokens (T, K), top_probs (T, K)) -> str (HTML)
    top_predictions(probs (T, V), vocab (V,), k=5) -> (T, k) tokens, (T, k) probs
    token_features(tokens (T,), level) -> {name: (T,)}
    rank_cells({"h": (L, T, H), ...}, {name: (T,)}, k) -> {name: [{state, layer, cell, r}]}
    constant_notes(tokens (T,), level, {name: (T,)}) -> {name: line}, constant features only
    gate_report([{gate name: (T, N, H)} per layer]) -> dict;  plot_gates(report, path)
    norms_by_distance(dL/dh (T, N, H)) -> (T,), last step first
    gradient_flow_report({label: (K,)}) -> dict;  plot_gradient_flow({label: (K,)}, path)
"""
