"""Fuzzing the run folder: every command that reads one exits 0 or 2, never a traceback.

A tiny run is trained once per module and copied per example; one file is then changed
(config.json, a checkpoint's JSON, its npz) with the integrity hash re-stamped, so the
loader's deeper checks are what is tested. A refused command leaves the folder as it was.
"""

import html
import json
import tracemalloc

import numpy as np
import pytest
from fuzz_helpers import (
    COMMANDS,
    TINY,
    apply_npz_mutation,
    assert_clean,
    check_mutated_run,
    cli,
    examples,
    examples_for,
    json_mutation,
    mutate_checkpoints,
    mutate_config,
    npz_mutation,
    restamp,
    write_json,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import bundled_corpus
from rnnlab.models import LanguageModel
from rnnlab.training.validate import parameter_count


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    text = bundled_corpus().read_text(encoding="utf-8")
    (folder / "train.txt").write_text(text[:20_000], encoding="utf-8")
    (folder / "eval.txt").write_text(text[20_000:22_000], encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    result = cli("train", "--data", str(data / "train.txt"), "--out", str(out),
                 "--max-steps", "30", *TINY)
    assert result[0] == 0, result[2]
    return out


def _check(trained, data, command, change, then=lambda run: None):
    """Copy the run, ``change(run)``, run ``command``: clean exit; refused -> unchanged;
    then ``then(run)`` before the copy goes."""
    return check_mutated_run(trained, lambda run: COMMANDS[command](run, data / "eval.txt"),
                             change, str(data), then=then)


@pytest.mark.parametrize("command", COMMANDS)
def test_the_untouched_run_folder_works(trained, data, command):
    assert _check(trained, data, command, lambda run: None)[0] == 0


def _template(trained, name):
    return json.loads((trained / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("command", COMMANDS)
def test_fuzzed_checkpoint_json(trained, data, command):
    template = _template(trained, "last.json")

    @settings(max_examples=examples_for(command, 20))
    @given(json_mutation(template))
    def check(mutation):
        _check(trained, data, command, lambda run: mutate_checkpoints(run, mutation))

    check()


@pytest.mark.parametrize("command", COMMANDS)
def test_fuzzed_checkpoint_npz(trained, data, command):
    with np.load(trained / "last.npz") as f:
        names = sorted(f.files)

    @settings(max_examples=examples_for(command, 20))
    @given(npz_mutation(names))
    def check(mutation):
        def change(run):
            for name in ("last", "best"):
                apply_npz_mutation(run, name, mutation)
        _check(trained, data, command, change)

    check()


@pytest.mark.parametrize("command", COMMANDS)
def test_fuzzed_config_json(trained, data, command):
    template = _template(trained, "config.json")

    @settings(max_examples=examples_for(command, 25))
    @given(json_mutation(template))
    def check(mutation):
        _check(trained, data, command, lambda run: mutate_config(run, mutation))

    check()


@pytest.mark.parametrize("command", COMMANDS)
@given(raw=st.binary(max_size=300))
@settings(max_examples=examples(5))
def test_json_replaced_by_random_bytes(trained, data, command, raw):
    def change(run):
        for name in ("config.json", "last.json", "best.json"):
            (run / name).write_bytes(raw)
    _check(trained, data, command, change)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_model_is_refused_naming_the_array(trained, data, command, value):
    def change(run):
        for name in ("last", "best"):
            with np.load(run / f"{name}.npz") as f:
                arrays = {k: f[k] for k in f.files}
            arrays["model/decoder.bias"][0] = value
            np.savez(run / f"{name}.npz", **arrays)
            restamp(run, name)
    page = []
    code, _, err = _check(trained, data, command, change, lambda run: page.extend(
        p.read_text(encoding="utf-8") for p in run.glob("report.html")))
    if command == "report":  # a page about a broken run still helps: the reason is on it
        assert code == 0 and len(page) == 1, err
        code, err = 2, html.unescape(page[0].split("Not available: ")[-1].split("</p>")[0])
    assert code == 2 and "'model/decoder.bias'" in err and "NaN or infinity" in err, err


@pytest.mark.parametrize("field, value", [("batch", 10**6), ("batch", -1), ("step", "7"),
                                          ("best_val", None), ("elapsed_s", float("nan"))])
def test_progress_out_of_range_names_the_field(trained, data, field, value):
    def change(run):
        record = json.loads((run / "last.json").read_text(encoding="utf-8"))
        record["meta"]["progress"][field] = value
        write_json(run / "last.json", record)
    code, _, err = _check(trained, data, "train --resume", change)
    assert code == 2 and f"progress.{field}" in err and "last.json" in err, err


def test_what_rnnlab_writes_is_accepted(trained):
    """The tiny run stopped mid-epoch: its schedule's best loss is still Infinity."""
    record = json.loads((trained / "last.json").read_text(encoding="utf-8"))
    assert record["meta"]["schedule"]["best"] == float("inf")
    assert record["meta"]["progress"]["batch"] > 0


@pytest.mark.parametrize("flag, value", [("--hidden", "1000000000"), ("--embed", "1000000000"),
                                         ("--layers", "1000000000"), ("--hidden", "9" * 400)])
def test_a_size_that_cannot_fit_is_refused_before_anything_is_allocated(data, tmp_path, flag,
                                                                         value):
    args = list(TINY)
    args[args.index(flag) + 1] = value
    out = tmp_path / "run"
    tracemalloc.start()
    try:
        code, _, err = cli("train", "--data", str(data / "train.txt"), "--out", str(out), *args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 2 and "GiB" in err and flag in err, err
    assert peak < 50 * 2**20 and not out.exists()


def test_a_size_in_config_json_is_refused_on_resume(trained, data):
    def change(run):
        record = json.loads((run / "config.json").read_text(encoding="utf-8"))
        record["config"]["hidden"] = 2**40
        write_json(run / "config.json", record)
    code, _, err = _check(trained, data, "train --resume", change)
    assert code == 2 and "GiB" in err, err


@pytest.mark.parametrize("cell, embed, hidden, layers, tie", [
    ("lstm", 8, 16, 3, False), ("gru", 16, 16, 2, True), ("rnn", 5, 7, 1, False)])
def test_the_size_estimate_counts_every_parameter(cell, embed, hidden, layers, tie):
    kw = dict(cell=cell, embed_size=embed, hidden_size=hidden, num_layers=layers,
              tie_weights=tie)
    model = LanguageModel(11, **kw, rng=np.random.default_rng(0))
    assert parameter_count(kw, 11) == sum(p.value.size for p in model.named_params().values())


@given(prime=st.none() | st.text(max_size=6), stop=st.none() | st.text(max_size=3),
       skip=st.lists(st.text(max_size=2), max_size=3))
@settings(max_examples=examples(25))
def test_sample_with_fuzzed_text_flags(trained, prime, stop, skip):
    argv = ["sample", "--checkpoint", str(trained), "--length", "5"]
    argv += (["--prime", prime] if prime is not None else []) + (
        ["--stop", stop] if stop is not None else [])
    for token in skip:
        argv += ["--skip", token]
    code, _, err = cli(*argv)
    assert_clean((code, "", err))


@pytest.mark.parametrize("command", ["sample", "eval"])
@pytest.mark.parametrize("path", [("meta", "vocab", "level"), ("meta", "config", "split")])
def test_what_the_long_run_found(trained, data, command, path):
    """KeyErrors the long profile found: each now a clean refusal (or a default)."""
    _check(trained, data, command, lambda run: mutate_checkpoints(run, (path, "delete", None)))


def test_inspect_names_the_run_whose_training_text_fails(trained, data):
    """Found by the long profile: with meta.config.data deleted, ``inspect gradients`` reads
    the bundled corpus (the default), which the run's vocabulary cannot encode; the error
    named only that corpus, not the run it came from."""
    code, _, err = _check(trained, data, "inspect gradients", lambda run: mutate_checkpoints(
        run, (("meta", "config", "data"), "delete", None)))
    assert code == 2 and "its training text" in err and "--text" in err, err


@pytest.mark.parametrize("raw", [b"1", b"[]", b'{"config": 3}', b"null"])
def test_report_on_a_config_json_that_is_not_an_object(trained, data, raw):
    """Found by the long profile: config.json holding ``1`` was an AttributeError."""
    code, _, err = _check(trained, data, "report",
                          lambda run: (run / "config.json").write_bytes(raw))
    assert code == 2 and "config.json" in err, err


@pytest.mark.parametrize("mutation", [
    (("meta", "sample_rng"), "replace", None),
    (("meta", "sample_rng", "state"), "delete", None),
    (("meta", "sample_rng", "state", "inc"), "replace", None),
    (("meta", "sample_rng", "has_uint32"), "delete", None),
    (("meta", "sample_rng", "uinteger"), "replace", None),
    (("meta", "sample_rng", "bit_generator"), "delete", None)])
def test_a_broken_sample_rng_is_refused_on_resume(trained, data, mutation):
    """The long profile found these: each was a TypeError/KeyError/ValueError traceback."""
    code, _, err = _check(trained, data, "train --resume",
                          lambda run: mutate_checkpoints(run, mutation))
    assert code == 2 and "meta.sample_rng" in err and "last.json" in err, err


@pytest.mark.parametrize("value", [None, -1, "200", 1.5])
def test_a_bad_sample_length_in_config_json_is_refused_on_resume(trained, data, value):
    """The long profile found this: config.sample_length null was a TypeError in training."""
    def change(run):
        record = json.loads((run / "config.json").read_text(encoding="utf-8"))
        record["config"]["sample_length"] = value
        write_json(run / "config.json", record)
    code, _, err = _check(trained, data, "train --resume", change)
    assert code == 2 and "sample_length" in err, err
