"""Export a trained model to ONNX, for runtimes without rnnlab (onnxruntime and others).

``rnnlab.onnx.export(model, "model.onnx")`` writes the eval-mode forward pass of a
:class:`~rnnlab.models.LanguageModel`, :class:`~rnnlab.models.SequenceClassifier` or
:class:`~rnnlab.models.SequenceTagger` (graphs in ``models.py``, the recurrent layers in
``_graph.py``), in the model's own float type, opset :data:`OPSET`. ``metadata`` (string
keys and values: the vocabulary, the label names) travels in the file's
``metadata_props`` beside ``rnnlab.model`` (the constructor's arguments, JSON).

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
from rnnlab.models import LanguageModel, SequenceClassifier, SequenceTagger
from rnnlab.onnx import models
from rnnlab.onnx._graph import OPSET

__all__ = ["OPSET", "export", "to_onnx"]
GRAPHS = {LanguageModel: models.language_model, SequenceClassifier: models.classifier,
          SequenceTagger: models.tagger}


def to_onnx(model: Any, metadata: dict[str, str] | None = None) -> Any:
    """The ``onnx.ModelProto`` of ``model`` (checked by ``onnx.checker``)."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'rnnlab[onnx]'"
                          ) from None
    build = GRAPHS.get(type(model))
    if build is None:
        raise ValueError(f"ONNX export takes a {', '.join(t.__name__ for t in GRAPHS)}, "
                         f"not a {type(model).__name__}")
    props = {"rnnlab.version": __version__, "rnnlab.class": type(model).__name__,
             "rnnlab.model": json.dumps(model.config()), **(metadata or {})}
    proto = build(model).model(type(model).__name__, props, (__doc__ or "").splitlines()[0])
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: Any, path: str | os.PathLike[str], *,
           metadata: dict[str, str] | None = None) -> list[Path]:
    """Write ``model``'s ONNX graph to ``path`` atomically (see the module doc); returns the
    files written.

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
    data = to_onnx(model, metadata).SerializeToString()
    with atomic_open(path, "wb") as f:
        f.write(data)
    return [Path(path)]
