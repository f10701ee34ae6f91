"""The rnnlab command line: a working run, and bad input -> one line, exit status 2."""

import json
import subprocess
import sys

import pytest

from rnnlab.data import bundled_corpus


def rnnlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def assert_one_line_error(result, *words):
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == errors[0]  # the error ends the output
    assert "Traceback" not in result.stderr
    for w in words:
        assert w in errors[0], errors[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "small.txt"
    path.write_text(bundled_corpus().read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    return path


TINY = ["--hidden", "32", "--embed", "8", "--layers", "1", "--batch-size", "8", "--bptt", "16",
        "--eval-every", "0", "--no-progress"]


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), "--max-steps", "30", *TINY)
    assert r.returncode == 0, r.stderr
    assert "sample:" in r.stdout
    return out


def test_sample_is_reproducible_and_streams(trained):
    a = rnnlab("sample", "--checkpoint", str(trained), "--length", "50", "--seed", "3")
    b = rnnlab("sample", "--checkpoint", str(trained), "--length", "50", "--seed", "3")
    c = rnnlab("sample", "--checkpoint", str(trained), "--length", "50", "--seed", "4")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout != c.stdout
    assert len(a.stdout) >= 50


def test_byte_level_on_a_file_of_one_two_byte_character(tmp_path):
    """100,000 "é" and no newline: trains, samples "é" whole (fuzz-found: the default prime was
    a lone byte decoded to U+FFFD, which the vocabulary cannot encode)."""
    data = tmp_path / "e.txt"
    data.write_text("é" * 100_000, encoding="utf-8")
    r = rnnlab("train", "--level", "byte", "--data", str(data), "--out", str(tmp_path / "run"),
               "--max-steps", "40", *TINY[:-3], "--eval-every", "20", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "é" in r.stdout.split("sample:")[1]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert any("é" in row.get("sample", "") for row in rows)


def test_sample_options(trained):
    r = rnnlab("sample", "--checkpoint", str(trained), "--length", "80", "--prime", "ROMEO:",
               "--top-k", "3", "--top-p", "0.9", "--temperature", "0.7", "--skip", "e")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ROMEO:")
    assert "e" not in r.stdout[len("ROMEO:"):]
    g1 = rnnlab("sample", "--checkpoint", str(trained), "--length", "40", "--greedy")
    g2 = rnnlab("sample", "--checkpoint", str(trained), "--length", "40", "--greedy",
                "--seed", "9")
    assert g1.stdout == g2.stdout


def test_eval_json(trained, corpus):
    r = rnnlab("eval", "--checkpoint", str(trained), "--data", str(corpus), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert {"loss", "perplexity", "bits_per_char", "tokens"} <= result.keys()
    assert 0 < result["loss"] < 4.2 and result["tokens"] > 29_000


def test_existing_run_folder_is_not_overwritten(trained, corpus):
    before = (trained / "last.npz").read_bytes()
    r = rnnlab("train", "--data", str(corpus), "--out", str(trained), "--max-steps", "5", *TINY)
    assert_one_line_error(r, "already exists", "--force")
    assert (trained / "last.npz").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--hidden", "0"], ["--hidden", "positive integer"]),
        (["train", "--batch-size", "-3"], ["--batch-size"]),
        (["train", "--lr", "nan"], ["--lr"]),
        (["train", "--dropout", "1.5"], ["--dropout"]),
        (["train", "--cell", "transformer"], ["--cell"]),
        (["train", "--split", "0.9,0.9"], ["--split"]),
        (["sample", "--temperature", "0"], ["--temperature"]),
        (["sample", "--top-k", "0"], ["--top-k"]),
        (["sample", "--top-p", "1.5"], ["--top-p"]),
        (["train", "--data", "/no/such/file.txt"], ["/no/such/file.txt"]),
        (["sample", "--checkpoint", "/no/such/run"], ["/no/such/run"]),
        (["train", "--resume", "/no/such/run"], ["/no/such/run"]),
        (["train", "--resume", "/no/such/run", "--lr", "0.1"], ["--lr", "cannot change"]),
        (["train", "--eval-batch-size", "0"], ["--eval-batch-size"]),
        (["train", "--tie-weights", "--embed", "16", "--hidden", "32"],
         ["--tie-weights needs --embed equal to --hidden", "--embed 32"]),
        (["train", "--check-weights-every", "-1"], ["--check-weights-every"]),
        (["train", "--sample-length", "2147483648"], ["--sample-length", "at most 100000"]),
    ],
)
def test_bad_flags_and_paths(args, words, tmp_path):
    assert_one_line_error(rnnlab(*args, cwd=tmp_path), *words)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", ["empty"]), (b"\x89PNG\r\n\x1a\n\x00\x00\x00", ["binary"]),
     (b"caf\xe9 au lait " * 20, ["UTF-8"]), (b"abc", ["3-token", "longer file"])],
)
def test_bad_data_files(content, words, tmp_path):
    data = tmp_path / "bad.txt"
    data.write_bytes(content)
    r = rnnlab("train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY)
    assert_one_line_error(r, *words)


def test_corrupt_checkpoint(trained, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in trained.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    npz = broken / "best.npz"
    npz.write_bytes(npz.read_bytes()[: len(npz.read_bytes()) // 2])
    assert_one_line_error(rnnlab("sample", "--checkpoint", str(broken)), "best")


def test_an_exploding_loss_stops_with_a_clear_message(corpus, tmp_path):
    # lr 1e30 without clipping: the loss turns NaN or explodes to a huge finite value,
    # depending on the BLAS kernel; both stop the run with the same one-line message.
    out = tmp_path / "run"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), "--optimizer", "sgd",
               "--lr", "1e30", "--clip", "0", "--max-steps", "50", *TINY)
    assert_one_line_error(r, "training loss", "at step", "last sane loss", "gradient norms")
    assert (out / "config.json").exists()


HUGE_INIT = ["--init-range", "1e4", "--dropout", "0", "--max-steps", "3"]


def test_a_huge_finite_loss_stops_at_the_divergence_limit(corpus, tmp_path):
    # U(-1e4, 1e4) weights: logits of order 1e5, a loss that is finite on every BLAS kernel
    # (log-softmax is shifted by the max) and far above 100 x ln(V) from the first step.
    out = tmp_path / "run"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), *HUGE_INIT, *TINY)
    assert_one_line_error(r, "training loss exploded", "at step 1", "divergence limit",
                          "--diverge-factor", "gradient norms")
    assert not (out / "last.npz").exists()  # nothing was saved after the explosion


def test_diverge_factor_0_trains_on_and_reports_an_infinite_perplexity(corpus, tmp_path):
    out = tmp_path / "run"
    r = rnnlab("train", "--data", str(corpus), "--out", str(out), *HUGE_INIT,
               "--diverge-factor", "0", "--no-sample", *TINY)
    assert r.returncode == 0, r.stderr
    assert "perplexity infinite (exp of the loss overflows)" in r.stdout
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["val_loss"] > 1000 and row["val_ppl"] is None
    assert row["val_ppl_note"].startswith("infinite")
    e = rnnlab("eval", "--checkpoint", str(out), "--data", str(corpus), "--json")
    assert e.returncode == 0, e.stderr
    result = json.loads(e.stdout)  # standard JSON: Infinity would parse here, so check it
    assert "Infinity" not in e.stdout and "NaN" not in e.stdout
    assert result["loss"] > 1000 and result["perplexity"] is None
    assert result["perplexity_note"].startswith("infinite")
    text = rnnlab("eval", "--checkpoint", str(out), "--data", str(corpus))
    assert text.returncode == 0 and "perplexity infinite" in text.stdout


def test_gradcheck_command():
    r = rnnlab("gradcheck", "--only", "LSTM peephole")
    assert r.returncode == 0, r.stderr
    assert "cases within 1e-06" in r.stdout
    assert all(line.rstrip().endswith("yes") for line in r.stdout.splitlines()[1:-1])


def test_version():
    r = rnnlab("--version")
    assert r.returncode == 0 and r.stdout.startswith("rnnlab ")
