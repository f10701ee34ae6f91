"""``rnnlab inspect gradients | gates | activations`` and ``rnnlab report`` on tiny real runs;
bad input -> one line, exit status 2."""

import base64
import json
import re
import shutil

import numpy as np
import pytest
from test_cli import TINY, assert_one_line_error, rnnlab

from rnnlab.cli.inspect import fresh_curves
from rnnlab.data import bundled_corpus
from rnnlab.inspect.gradient_flow import measure_decay

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.txt"
    path.write_text(bundled_corpus().read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lstm_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lstm"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), "--max-steps", "30",
               *TINY, "--eval-every", "10", "--layers", "2", "--forget-bias", "1",
               "--sample-length", "50", "--no-sample")  # the last of a repeated flag wins
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def rnn_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "rnn"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), "--max-steps", "10",
               "--cell", "rnn", "--nonlinearity", "relu", "--no-sample", *TINY)
    assert r.returncode == 0, r.stderr
    return out


def test_fresh_gradient_flow_json_and_plot(tmp_path):
    r = rnnlab("inspect", "gradients", "--steps", "30", "--windows", "8", "--hidden", "64",
               "--out", str(tmp_path / "g.png"), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["steps"] == 30 and result["checkpoint"] is None
    assert set(result["curves"]) == {"rnn-tanh h", "rnn-relu h", "lstm h", "lstm c", "gru h"}
    for curve in result["curves"].values():
        assert len(curve["norms"]) == 30 and curve["range"][0] == 0
        assert {"decay_per_step", "steps_to_fall_1e3", "K"} <= curve.keys()
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_at_init_the_tanh_rnn_gradient_fades_faster_than_the_lstms(seed):
    """Averaged over 16 windows of real text: measured ~0.49 per step for the tanh RNN,
    ~0.60 (h) and ~0.62 (c) for the LSTM, ~0.80 / ~0.83 with forget bias 1 (hidden 128)."""
    from rnnlab.data import Vocab, read_text

    text = read_text(bundled_corpus())[:200_000]
    vocab = Vocab.build(text, "char")
    ids = vocab.encode(text)

    class Args:
        hidden, steps, windows, forget_bias = 128, 40, 16, None

    Args.seed = seed
    curves = fresh_curves(["rnn-tanh", "lstm"], ids, len(vocab), Args)
    Args.forget_bias = 1.0
    biased = fresh_curves(["lstm"], ids, len(vocab), Args)
    decay = {k: measure_decay(v)["decay_per_step"] for k, v in curves.items()}
    assert decay["rnn-tanh h"] < decay["lstm h"] - 0.05, decay
    assert decay["rnn-tanh h"] < decay["lstm c"] - 0.05, decay
    assert measure_decay(biased["lstm c"])["decay_per_step"] > decay["lstm c"] + 0.1


def test_checkpoint_gradient_flow_per_layer(lstm_run, corpus, tmp_path):
    r = rnnlab("inspect", "gradients", "--checkpoint", str(lstm_run), "--steps", "20",
               "--windows", "4", "--out", str(tmp_path / "g.png"), "--json")
    assert r.returncode == 0, r.stderr
    curves = json.loads(r.stdout)["curves"]
    assert set(curves) == {f"lstm {s} layer {k}" for s in "hc" for k in (0, 1)}
    assert all(len(c["norms"]) == 20 for c in curves.values())
    r = rnnlab("inspect", "gradients", "--checkpoint", str(lstm_run), "--steps", "20",
               "--layer", "1", "--text", str(corpus), "--out", str(tmp_path / "g.png"), "--json")
    assert set(json.loads(r.stdout)["curves"]) == {"lstm h layer 1", "lstm c layer 1"}


def test_gates_json_and_plot(lstm_run, corpus, tmp_path):
    r = rnnlab("inspect", "gates", "--checkpoint", str(lstm_run), "--text", str(corpus),
               "--max-tokens", "3000", "--out", str(tmp_path / "gates.png"), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["cell"] == "lstm" and report["tokens"] == 3000
    assert [layer["layer"] for layer in report["layers"]] == [0, 1]
    for layer in report["layers"]:
        assert set(layer["gates"]) == set("ifgo") and 0 <= layer["saturated"] <= 1
        assert 0 < layer["forget_mean"] < 1
        assert sum(layer["gates"]["f"]["histogram"]["counts"]) == 3000 * 32
    assert report["layers"][0]["forget_mean"] > 0.6  # forget bias 1: sigma(1) = 0.73 at init
    assert (tmp_path / "gates.png").read_bytes()[:8] == PNG
    one = rnnlab("inspect", "gates", "--checkpoint", str(lstm_run), "--text", str(corpus),
                 "--layer", "1", "--max-tokens", "500", "--out", str(tmp_path / "g1.png"),
                 "--json")
    assert [layer["layer"] for layer in json.loads(one.stdout)["layers"]] == [1]


def test_activations_page(lstm_run, corpus, tmp_path):
    out = tmp_path / "page.html"
    r = rnnlab("inspect", "activations", "--checkpoint", str(lstm_run), "--text", str(corpus),
               "--max-tokens", "400", "--units", "0-7", "--out", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="data">(.*?)</script>', page, re.S).group(1))
    assert data["layers"] == 2 and data["cells"] == 8 and data["states"] == ["h", "c"]
    assert len(data["tokens"]) == 400 and len(data["pred_ids"][0]) == 5
    probs = np.array(data["pred_probs"])
    assert np.all(np.diff(probs, axis=1) <= 0) and np.all(probs.sum(axis=1) <= 1 + 1e-3)


def test_report(lstm_run, tmp_path):
    r = rnnlab("report", str(lstm_run), "--steps", "20", "--windows", "4")
    assert r.returncode == 0, r.stderr
    page = (lstm_run / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # loss, perplexity, lr, gradients, gradient flow
    assert all(base64.b64decode(b)[:8] == PNG for b in images)
    assert page.count("<pre>") == 3  # a sample at each of the 3 evaluations
    assert "lstm c layer 1: decay per step 0." in page
    assert "forget_bias" in page and "Content-Security-Policy" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)


def test_report_of_an_older_run_without_the_new_fields(lstm_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(lstm_run, old)
    keep = ("step", "train_loss", "val_loss")
    rows = [json.loads(r) for r in (old / "metrics.jsonl").read_text().splitlines()]
    (old / "metrics.jsonl").write_text("".join(json.dumps({k: r[k] for k in keep}) + "\n"
                                               for r in rows))
    for f in ("best.npz", "best.json", "last.npz", "last.json"):
        (old / f).unlink()
    r = rnnlab("report", str(old))
    assert r.returncode == 0, r.stderr
    page = (old / "report.html").read_text(encoding="utf-8")
    assert "No samples recorded" in page and "Not available" in page


def test_train_flags_of_another_cell_and_resume(lstm_run, tmp_path):
    r = rnnlab("train", "--cell", "lstm", "--nonlinearity", "relu", "--out", str(tmp_path / "x"))
    assert_one_line_error(r, "--nonlinearity relu", "--cell rnn")
    r = rnnlab("train", "--cell", "gru", "--forget-bias", "1", "--out", str(tmp_path / "x"))
    assert_one_line_error(r, "--forget-bias", "--cell lstm")
    for flag, value in (("--forget-bias", "2"), ("--nonlinearity", "relu")):
        assert_one_line_error(rnnlab("train", "--resume", str(lstm_run), flag, value),
                              flag, "cannot change")


def bad(kind, tmp_path):
    path = tmp_path / f"{kind}.txt"
    path.write_bytes({"empty": b"", "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
                      "latin1": b"caf\xe9 au lait " * 20}[kind])
    return str(path)


@pytest.mark.parametrize(("kind", "words"), [("empty", ["empty"]), ("binary", ["binary"]),
                                             ("latin1", ["UTF-8"])])
@pytest.mark.parametrize("command", ["gates", "activations"])
def test_bad_text_files(lstm_run, tmp_path, command, kind, words):
    r = rnnlab("inspect", command, "--checkpoint", str(lstm_run), "--text", bad(kind, tmp_path),
               "--out", str(tmp_path / "out"))
    assert_one_line_error(r, kind + ".txt", *words)


def test_bad_input(lstm_run, rnn_run, corpus, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    text = ["--text", str(corpus)]
    cases = [
        (["inspect", "gates", "--checkpoint", str(tmp_path / "empty_dir"), *text],
         ["not a run folder"]),
        (["inspect", "activations", "--checkpoint", str(corpus), *text], ["no run folder"]),
        (["inspect", "gradients", "--checkpoint", str(tmp_path / "nope")], ["nope"]),
        (["inspect", "gates", "--checkpoint", str(rnn_run), *text], ["RNN run", "no gates"]),
        (["inspect", "gates", "--checkpoint", str(lstm_run), *text, "--layer", "2"],
         ["--layer 2", "out of range", "2 layers"]),
        (["inspect", "activations", "--checkpoint", str(lstm_run), *text, "--layer", "7"],
         ["--layer 7", "out of range"]),
        (["inspect", "activations", "--checkpoint", str(lstm_run), *text, "--units", "3,32"],
         ["--units", "32", "out of range", "32 cells"]),
        (["inspect", "gradients", "--checkpoint", str(lstm_run), "--layer", "9"],
         ["--layer 9"]),
        (["inspect", "gradients", "--cells", "lstm,transformer"], ["--cells", "transformer"]),
        (["inspect", "gradients", "--checkpoint", str(lstm_run), "--cells", "gru"], ["--cells"]),
        (["report", str(tmp_path / "empty_dir")], ["not a run folder"]),
    ]
    for args, words in cases:
        if "--out" not in args and args[0] == "inspect":
            args = [*args, "--out", str(tmp_path / "out.png")]
        assert_one_line_error(rnnlab(*args), *words)
    missing = str(tmp_path / "no" / "such" / "folder" / "out.png")
    for command in ("gates", "activations"):
        r = rnnlab("inspect", command, "--checkpoint", str(lstm_run), *text, "--out", missing)
        assert_one_line_error(r, "does not exist")
    assert_one_line_error(rnnlab("inspect", "gradients", "--out", missing), "does not exist")
    assert not (tmp_path / "no").exists()
