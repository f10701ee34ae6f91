"""rnnlab.optim against torch.optim and torch.nn.utils.clip_grad_norm_."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from rnnlab.nn.module import Parameter
from rnnlab.optim import SGD, Adagrad, Adam, Optimizer, RMSprop, clip_grad_norm

SHAPES = {"rnn.weight_ih_l0": (3, 4), "rnn.bias_ih_l0": (4,), "head.w": (2, 3, 2), "scale": ()}
N_STEPS = 5

# (id, our class, our kwargs, torch class name, torch kwargs)
CASES = [
    ("sgd", SGD, {"lr": 0.1}, "SGD", {"lr": 0.1}),
    ("sgd-momentum", SGD, {"lr": 0.1, "momentum": 0.9}, "SGD", {"lr": 0.1, "momentum": 0.9}),
    ("sgd-dampening", SGD, {"lr": 0.1, "momentum": 0.8, "dampening": 0.3},
     "SGD", {"lr": 0.1, "momentum": 0.8, "dampening": 0.3}),
    ("sgd-nesterov", SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True},
     "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd-wd", SGD, {"lr": 0.1, "weight_decay": 0.01}, "SGD", {"lr": 0.1, "weight_decay": 0.01}),
    ("sgd-nesterov-wd", SGD, {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1},
     "SGD", {"lr": 0.05, "momentum": 0.5, "nesterov": True, "weight_decay": 0.1}),
    ("adagrad", Adagrad, {"lr": 0.1}, "Adagrad", {"lr": 0.1}),
    ("adagrad-init-wd", Adagrad, {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1},
     "Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("adagrad-eps", Adagrad, {"eps": 1e-3}, "Adagrad", {"eps": 1e-3}),
    ("rmsprop", RMSprop, {}, "RMSprop", {}),
    ("rmsprop-alpha", RMSprop, {"lr": 0.03, "alpha": 0.9, "eps": 1e-4},
     "RMSprop", {"lr": 0.03, "alpha": 0.9, "eps": 1e-4}),
    ("rmsprop-momentum", RMSprop, {"momentum": 0.9}, "RMSprop", {"momentum": 0.9}),
    ("rmsprop-centered", RMSprop, {"centered": True}, "RMSprop", {"centered": True}),
    ("rmsprop-all", RMSprop, {"momentum": 0.5, "centered": True, "weight_decay": 0.1},
     "RMSprop", {"momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("adam", Adam, {}, "Adam", {}),
    ("adam-betas", Adam, {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3},
     "Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-3}),
    ("adam-l2", Adam, {"lr": 1e-2, "weight_decay": 0.1}, "Adam", {"lr": 1e-2, "weight_decay": 0.1}),
    ("adamw", Adam, {"lr": 1e-2, "weight_decay": 0.1, "decoupled": True},
     "AdamW", {"lr": 1e-2, "weight_decay": 0.1}),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def make_params(dtype, seed=0) -> dict[str, Parameter]:
    rng = np.random.default_rng(seed)
    return {name: Parameter(rng.standard_normal(shape).astype(dtype))
            for name, shape in SHAPES.items()}


def make_grads(dtype, n_steps=N_STEPS, seed=1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}
            for _ in range(n_steps)]


def run_ours(opt: Optimizer, params, grads, lr_schedule=None) -> None:
    for i, step_grads in enumerate(grads):
        for name, g in step_grads.items():
            params[name].grad[...] = g
        if lr_schedule is not None:
            opt.lr = lr_schedule[i]
        opt.step()


def run_torch(torch, opt_cls_name, kwargs, params, grads, lr_schedule=None):
    tparams = {n: torch.tensor(p.value.copy(), requires_grad=True) for n, p in params.items()}
    opt = getattr(torch.optim, opt_cls_name)(list(tparams.values()), **kwargs)
    for i, step_grads in enumerate(grads):
        for name, g in step_grads.items():
            tparams[name].grad = torch.from_numpy(g.copy())
        if lr_schedule is not None:
            opt.param_groups[0]["lr"] = lr_schedule[i]
        opt.step()
    return {n: t.detach().numpy() for n, t in tparams.items()}


@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize(("cid", "cls", "kw", "tname", "tkw"), CASES, ids=CASE_IDS)
def test_matches_torch(torch, cid, cls, kw, tname, tkw, dtype, rtol):
    params = make_params(dtype)
    grads = make_grads(dtype)
    expected = run_torch(torch, tname, tkw, params, grads)
    arrays_before = {n: p.value for n, p in params.items()}
    run_ours(cls(params, **kw), params, grads)
    for name, p in params.items():
        assert p.value is arrays_before[name]  # updated in place
        assert p.value.dtype == dtype
        # step() leaves the gradient alone, even when weight decay is added to it.
        np.testing.assert_array_equal(p.grad, grads[-1][name])
        np.testing.assert_allclose(p.value, expected[name], rtol=rtol, atol=rtol * 1e-3)


@pytest.mark.parametrize(("cid", "cls", "kw", "tname", "tkw"), CASES, ids=CASE_IDS)
def test_lr_changed_between_steps_matches_torch(torch, cid, cls, kw, tname, tkw):
    params = make_params(np.float64)
    grads = make_grads(np.float64)
    base = kw.get("lr", 1e-2)
    schedule = [base * f for f in (1.0, 0.5, 2.0, 0.0, 0.1)]
    expected = run_torch(torch, tname, tkw, params, grads, schedule)
    run_ours(cls(params, **kw), params, grads, schedule)
    for name, p in params.items():
        np.testing.assert_allclose(p.value, expected[name], rtol=1e-12, atol=1e-15)


def test_iterable_params_are_named_by_position():
    params = make_params(np.float64)
    opt = Adam(list(params.values()))
    arrays, meta = opt.state_dict()
    assert sorted(arrays) == sorted(f"{i}.{b}" for i in range(len(SHAPES))
                                    for b in ("exp_avg", "exp_avg_sq"))
    assert meta["optimizer"] == "Adam"


def test_buffer_keys_use_param_names():
    arrays, _ = Adam(make_params(np.float64)).state_dict()
    assert "rnn.weight_ih_l0.exp_avg" in arrays
    assert arrays["rnn.weight_ih_l0.exp_avg_sq"].shape == SHAPES["rnn.weight_ih_l0"]


def test_zero_grad_and_step_does_not_zero():
    params = make_params(np.float32)
    for p in params.values():
        p.grad[...] = 1.0
    opt = SGD(params, lr=0.1)
    opt.step()
    assert all(np.all(p.grad == 1.0) for p in params.values())
    opt.zero_grad()
    assert all(np.all(p.grad == 0.0) for p in params.values())


@pytest.mark.parametrize(("cid", "cls", "kw", "tname", "tkw"), CASES, ids=CASE_IDS)
def test_state_dict_round_trip(cid, cls, kw, tname, tkw):
    grads = make_grads(np.float64, n_steps=6)
    params_a = make_params(np.float64)
    opt_a = cls(params_a, **kw)
    run_ours(opt_a, params_a, grads[:3])
    opt_a.lr *= 0.5  # a schedule's change must survive the checkpoint
    arrays, meta = opt_a.state_dict()
    # Through the formats a checkpoint uses: .npz for arrays, JSON for meta.
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    meta = json.loads(json.dumps(meta))

    params_b = {n: Parameter(p.value.copy()) for n, p in params_a.items()}
    opt_b = cls(params_b, lr=123.0)
    with np.load(buf) as loaded:
        opt_b.load_state_dict(loaded, meta)
    assert opt_b.lr == opt_a.lr and opt_b.steps == opt_a.steps == 3
    assert opt_b.hyperparams() == opt_a.hyperparams()

    run_ours(opt_a, params_a, grads[3:])
    run_ours(opt_b, params_b, grads[3:])
    for name in SHAPES:
        np.testing.assert_array_equal(params_b[name].value, params_a[name].value)


def test_state_dict_returns_copies():
    params = make_params(np.float64)
    opt = Adam(params)
    run_ours(opt, params, make_grads(np.float64, n_steps=1))
    arrays, _ = opt.state_dict()
    saved = {k: v.copy() for k, v in arrays.items()}
    run_ours(opt, params, make_grads(np.float64, n_steps=1, seed=5))
    for k, v in arrays.items():
        np.testing.assert_array_equal(v, saved[k])


@pytest.mark.parametrize(("cid", "cls", "kw", "tname", "tkw"), CASES, ids=CASE_IDS)
def test_meta_is_json_serialisable(cid, cls, kw, tname, tkw):
    params = make_params(np.float32)
    opt = cls(params, **kw)
    run_ours(opt, params, make_grads(np.float32, n_steps=2))
    _, meta = opt.state_dict()
    assert json.loads(json.dumps(meta)) == meta
    assert meta["optimizer"] == cls.__name__ and meta["step"] == 2


def _saved_adam():
    params = make_params(np.float64)
    opt = Adam(params, lr=0.01)
    run_ours(opt, params, make_grads(np.float64, n_steps=2))
    return params, opt.state_dict()


def _drop_key(arrays, meta):
    del arrays["head.w.exp_avg_sq"]
    return "head.w.exp_avg_sq"


def _bad_shape(arrays, meta):
    arrays["rnn.bias_ih_l0.exp_avg"] = np.zeros((5,))
    return "rnn.bias_ih_l0.exp_avg"


def _extra_key(arrays, meta):
    arrays["decoder.w.exp_avg"] = np.zeros((2,))
    return "decoder.w.exp_avg"


def _other_class(arrays, meta):
    meta["optimizer"] = "SGD"
    return "SGD"


def _bad_hyper(arrays, meta):
    meta["hyperparams"]["betas"] = [0.9, 1.5]
    return r"betas\[1\]"


def _no_step(arrays, meta):
    del meta["step"]
    return "step"


@pytest.mark.parametrize("corrupt", [_drop_key, _bad_shape, _extra_key, _other_class,
                                     _bad_hyper, _no_step])
def test_load_state_dict_errors_leave_optimizer_unchanged(corrupt):
    params, (arrays, meta) = _saved_adam()
    match = corrupt(arrays, meta)
    opt = Adam(params, lr=0.5)
    before, before_meta = opt.state_dict()
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(arrays, meta)
    after, after_meta = opt.state_dict()
    assert after_meta == before_meta
    assert all(np.array_equal(after[k], before[k]) for k in before)


def test_load_into_other_optimizer_class_fails():
    params = make_params(np.float64)
    arrays, meta = SGD(params, lr=0.1, momentum=0.9).state_dict()
    with pytest.raises(ValueError, match="SGD"):
        RMSprop(params).load_state_dict(arrays, meta)


@pytest.mark.parametrize(("make", "match"), [
    (lambda p: SGD(p, lr=-0.1), "lr"),
    (lambda p: SGD(p, lr=float("nan")), "lr"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.9), "momentum"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, nesterov=True, dampening=0.1), "nesterov"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1.0), "weight_decay"),
    (lambda p: Adagrad(p, eps=0.0), "eps"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1.0), "initial_accumulator_value"),
    (lambda p: RMSprop(p, eps=-1e-8), "eps"),
    (lambda p: RMSprop(p, alpha=1.5), "alpha"),
    (lambda p: RMSprop(p, momentum=-0.5), "momentum"),
    (lambda p: Adam(p, lr=-1e-3), "lr"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
    (lambda p: Adam(p, betas=(-0.1, 0.999)), r"betas\[0\]"),
    (lambda p: Adam(p, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda p: Adam(p, eps=0.0), "eps"),
    (lambda p: Adam([], lr=1e-3), "empty"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make(make_params(np.float64))


def test_duplicate_parameter_rejected():
    p = Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="more than once"):
        SGD([p, p], lr=0.1)


def _clip_both(torch, grads, max_norm, as_dict=False):
    params = {f"p{i}": Parameter(np.zeros_like(g)) for i, g in enumerate(grads)}
    for p, g in zip(params.values(), grads, strict=True):
        p.grad[...] = g
    norm = clip_grad_norm(params if as_dict else list(params.values()), max_norm)
    tparams = [torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
               for g in grads]
    for t, g in zip(tparams, grads, strict=True):
        t.grad = torch.from_numpy(g.copy())
    tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    return norm, [p.grad for p in params.values()], float(tnorm), [t.grad.numpy() for t in tparams]


@pytest.mark.parametrize("as_dict", [False, True])
@pytest.mark.parametrize(("dtype", "rtol"), [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("max_norm", [0.5, 1e3], ids=["clipped", "unclipped"])
def test_clip_grad_norm_matches_torch(torch, max_norm, dtype, rtol, as_dict):
    grads = list(make_grads(dtype, n_steps=1)[0].values())
    raw = [g.copy() for g in grads]
    norm, ours, tnorm, theirs = _clip_both(torch, grads, max_norm, as_dict)
    assert isinstance(norm, float)
    assert norm == pytest.approx(tnorm, rel=rtol)
    for a, b, g in zip(ours, theirs, raw, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)
        if max_norm > norm:
            np.testing.assert_array_equal(a, g)
    clipped = np.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2)) for a in ours))
    assert clipped <= max_norm * (1 + rtol)


def test_clip_grad_norm_just_below_max_norm_scales_like_torch(torch):
    # torch scales by min(1, max_norm / (norm + 1e-6)), so a norm within 1e-6 below
    # max_norm is scaled (very slightly) too.
    g = np.array([3.0, 4.0])
    norm, ours, tnorm, theirs = _clip_both(torch, [g], 5.0 + 5e-7)
    assert norm == tnorm == 5.0
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-15, atol=0)
    assert np.all(np.abs(ours[0]) < np.abs(g))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_clip_grad_norm_non_finite_is_returned_not_hidden(bad):
    grads = [np.array([1.0, bad]), np.array([[2.0, 3.0]])]
    params = [Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad[...] = g
    norm = clip_grad_norm(params, 1.0)
    assert np.isnan(norm) if np.isnan(bad) else norm == np.inf
    for p, g in zip(params, grads, strict=True):
        np.testing.assert_array_equal(p.grad, g)


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("nan")])
def test_clip_grad_norm_rejects_non_positive_max_norm(max_norm):
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([Parameter(np.ones(2))], max_norm)


def test_clip_norm_of_large_float32_gradients_matches_float64():
    """Chunked float32 sums (clip._sum_squares) over millions of entries of mixed scale."""
    rng = np.random.default_rng(0)
    params = [Parameter(np.zeros(n, dtype=np.float32)) for n in (3_000_000, 1_000_003, 5)]
    for p, scale in zip(params, (1e-3, 1e-1, 10.0), strict=True):
        p.grad[...] = rng.standard_normal(p.grad.size) * scale
    exact = np.sqrt(sum(np.dot(p.grad.astype(np.float64), p.grad.astype(np.float64))
                        for p in params))
    assert clip_grad_norm(params, 1e9) == pytest.approx(exact, rel=1e-7)
