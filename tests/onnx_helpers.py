"""What the ONNX tests share: running an exported file, comparing with the issue's tolerance."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOL = 1e-5  # of each tensor's largest magnitude (float32)


def session(path):
    """An onnxruntime session of ``path`` (after ``onnx.checker`` on the file itself)."""
    onnx.checker.check_model(str(path), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run(sess, feed):
    """{output name: array} of one call."""
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed), strict=True))


def assert_close(got, want, tol=TOL, what=""):
    """max |got - want| <= tol * max |want|, with the same shape."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = float(np.abs(want).max())
    err = float(np.abs(got.astype(np.float64) - want).max())
    assert scale > 0 and err <= tol * scale, f"{what}: {err:.3g} > {tol} x {scale:.3g}"


def metadata(path):
    """The file's ``metadata_props`` as a dict."""
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}
