"""Seeing inside a recurrent network: functions of plain NumPy arrays, no model needed.

- :mod:`~rnnlab.inspect.features`: text features per token and the cells that follow them.
- :mod:`~rnnlab.inspect.activations_page`: one self-contained HTML page colouring the text
  by a chosen cell (Karpathy, Johnson & Fei-Fei 2015; LSTMVis).
- :mod:`~rnnlab.inspect.gates`: how saturated each gate is, per layer, with histograms.
- :mod:`~rnnlab.inspect.gradient_flow`: how fast the gradient fades going back in time.
- :mod:`~rnnlab.inspect.browser`: open a page in headless Chromium (tests, screenshots).

Every function documents the shapes it takes; models and the CLI call them, never the
other way round.
"""
