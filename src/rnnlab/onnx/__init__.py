"""Export a trained model to ONNX, for runtimes without rnnlab (onnxruntime and others).

``rnnlab.onnx.export(model, "model.onnx")`` writes the eval-mode forward pass (no
dropout) of a :class:`~rnnlab.models.LanguageModel`,
:class:`~rnnlab.models.SequenceClassifier` or :class:`~rnnlab.models.SequenceTagger`
(graphs in ``models.py``), or of a :class:`~rnnlab.models.Seq2Seq` as two graphs
(``seq2seq.py``); the recurrent layers become ONNX's operators (``_graph.py``). The graph
has the model's own float type and opset :data:`OPSET`. ``metadata`` (string keys and
values: the vocabulary, the label names) travels in the file's ``metadata_props`` beside
``rnnlab.model`` (the constructor's arguments, JSON).

Needs the optional extra ``onnx`` (``pip install rnnlab[onnx]``); ``import rnnlab`` never
imports it. The command line: ``rnnlab export --checkpoint RUN --out model.onnx``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rnnlab import __version__
from rnnlab.atomic import atomic_open
from rnnlab.models import LanguageModel, Seq2Seq, SequenceClassifier, SequenceTagger
from rnnlab.onnx import models, seq2seq
from rnnlab.onnx._graph import OPSET

__all__ = ["OPSET", "export", "to_onnx"]
GRAPHS: dict[type, dict[str, Any]] = {  # model type -> {part: graph builder}; "": one graph
    LanguageModel: {"": models.language_model}, SequenceClassifier: {"": models.classifier},
    SequenceTagger: {"": models.tagger},
    Seq2Seq: {"encoder": seq2seq.encoder, "decoder": seq2seq.decoder_step},
}


def to_onnx(model: Any, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """``{part: onnx.ModelProto}`` of ``model``, each checked by ``onnx.checker``: one part
    ``""``, or Seq2Seq's ``"encoder"`` and ``"decoder"`` (one step)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'rnnlab[onnx]'"
                          ) from None
    builders = GRAPHS.get(type(model))
    if builders is None:
        raise ValueError(f"ONNX export takes a {', '.join(t.__name__ for t in GRAPHS)}, "
                         f"not a {type(model).__name__}")
    protos = {}
    for part, build in builders.items():
        props = {"rnnlab.version": __version__, "rnnlab.class": type(model).__name__,
                 "rnnlab.graph": part or "model", "rnnlab.model": json.dumps(model.config()),
                 **(metadata or {})}
        name = f"{type(model).__name__} {part}".strip()
        protos[part] = build(model).model(name, props, (__doc__ or "").splitlines()[0])
        onnx.checker.check_model(protos[part], full_check=True)
    return protos


def export(model: Any, path: str | os.PathLike[str], *,
           metadata: dict[str, str] | None = None) -> list[Path]:
    """Write ``model``'s ONNX graph to ``path`` atomically (see the module doc); returns the
    files written. A Seq2Seq writes two, ``path``'s name with ``.encoder`` and ``.decoder``
    before its suffix (``model.onnx``: ``model.encoder.onnx``, ``model.decoder.onnx``).

    >>> import numpy as np, onnxruntime, tempfile, pathlib
    >>> model = LanguageModel(5, cell="gru", embed_size=3, hidden_size=4,
    ...                       rng=np.random.default_rng(0))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "lm.onnx"
    >>> export(model, path) == [path]
    True
    >>> run = onnxruntime.InferenceSession(path).run
    >>> logits, h_n = run(None, {"ids": np.zeros((2, 1), np.int64),
    ...                          "h0": np.zeros((1, 1, 4), np.float32)})
    >>> logits.shape, h_n.shape
    ((2, 1, 5), (1, 1, 4))
    """
    path = Path(path)
    written = []
    for part, proto in to_onnx(model, metadata).items():
        target = path.with_name(f"{path.stem}.{part}{path.suffix}") if part else path
        with atomic_open(target, "wb") as f:
            f.write(proto.SerializeToString())
        written.append(target)
    return written
