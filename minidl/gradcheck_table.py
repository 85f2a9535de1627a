"""`minidl gradcheck`: every differentiable op of minidl.functional against
finite differences, one row each, as a pass/fail table.

    minidl gradcheck                 # all of them
    minidl gradcheck conv2d softmax  # only these

Each row names an op, says how to call it, and gives small float64 inputs
chosen away from the points where the op has no derivative (kinks of relu
and abs, ties of max, poles of log and division). `gradcheck` then compares
backward with central differences (see minidl/gradcheck.py).
"""
import time

import numpy as np

# Functions of minidl.functional with nothing to check: no gradient flows
# through them (they return plain probabilities for plots).
NOT_DIFFERENTIABLE = {"attention_weights": "returns weights without gradient, for plots"}


def input_makers(seed=0):
    """Makers of small float64 inputs, kept away from kinks, poles and ties."""
    rng = np.random.default_rng(seed)
    return dict(
        u=lambda *s: rng.uniform(-1, 1, s),                                   # smooth ops
        pos=lambda *s: rng.uniform(0.5, 2.0, s),                              # log, sqrt, divisors
        away=lambda *s: rng.choice([-1.0, 1.0], s) * rng.uniform(0.2, 1.0, s),  # |x| >= 0.2: relu, abs
        distinct=lambda *s: (rng.permutation(int(np.prod(s))).reshape(s) * 0.1 - 1.0
                             + rng.uniform(0, 0.02, s)),                      # no ties for max
        labels=lambda n, k: rng.integers(0, k, n),
        mask=lambda *s: rng.random(s) < 0.3,                                  # bool, about 30% True
    )


def _seeded_dropout(f, a):
    """dropout with the same mask on every call (finite differences call it many times)."""
    import minidl as mdl

    mdl.manual_seed(0)
    return f(a, 0.3)


def gradcheck_rows(i):
    """(name, call(op, *inputs), inputs); integer and bool arrays, and Tensors
    without requires_grad, are passed through unchecked."""
    import minidl as mdl

    const = mdl.tensor
    return [
        # arithmetic and elementwise
        ("add", lambda f, a, b: f(a, b), [i["u"](3, 4), i["u"](4)]),
        ("sub", lambda f, a, b: f(a, b), [i["u"](3, 1), i["u"](1, 4)]),
        ("mul", lambda f, a, b: f(a, b), [i["u"](2, 3), i["u"](2, 3)]),
        ("div", lambda f, a, b: f(a, b), [i["u"](2, 3), i["pos"](3)]),
        ("neg", lambda f, a: f(a), [i["u"](5)]),
        ("pow", lambda f, a: f(a, 3), [i["u"](2, 3)]),
        ("exp", lambda f, a: f(a), [i["u"](2, 3)]),
        ("log", lambda f, a: f(a), [i["pos"](2, 3)]),
        ("sqrt", lambda f, a: f(a), [i["pos"](2, 3)]),
        ("abs", lambda f, a: f(a), [i["away"](2, 3)]),
        ("clamp", lambda f, a: f(a, -0.5, 0.5), [i["distinct"](3, 4)]),
        ("clip", lambda f, a: f(a, min=-0.1), [i["distinct"](3, 4)]),
        ("maximum", lambda f, a, b: f(a, b), [i["distinct"](2, 3), i["distinct"](2, 3) + 0.05]),
        ("minimum", lambda f, a, b: f(a, b), [i["distinct"](2, 3), i["distinct"](3) + 0.05]),
        ("where", lambda f, c, a, b: f(c, a, b), [i["mask"](3, 4), i["u"](3, 4), i["u"](4)]),
        ("masked_fill", lambda f, a, m: f(a, m, 2.0), [i["u"](3, 4), i["mask"](3, 4)]),
        ("matmul", lambda f, a, b: f(a, b), [i["u"](2, 3, 4), i["u"](4, 2)]),
        # activations
        ("tanh", lambda f, a: f(a), [i["u"](2, 3)]),
        ("sigmoid", lambda f, a: f(a), [i["u"](2, 3)]),
        ("relu", lambda f, a: f(a), [i["away"](2, 3)]),
        ("leaky_relu", lambda f, a: f(a, 0.1), [i["away"](2, 3)]),
        ("gelu", lambda f, a: f(a), [i["u"](2, 3)]),
        ("dropout", _seeded_dropout, [i["u"](4, 5)]),
        # reductions
        ("sum", lambda f, a: f(a, dim=1, keepdim=True), [i["u"](3, 4)]),
        ("mean", lambda f, a: f(a, dim=(0, 2)), [i["u"](2, 3, 4)]),
        ("var", lambda f, a: f(a, dim=1), [i["u"](3, 5)]),
        ("amax", lambda f, a: f(a, dim=1), [i["distinct"](3, 4)]),
        ("amin", lambda f, a: f(a, dim=0), [i["distinct"](3, 4)]),
        ("softmax", lambda f, a: f(a, dim=-1), [i["u"](3, 5)]),
        ("log_softmax", lambda f, a: f(a, dim=-1), [i["u"](3, 5)]),
        ("logsumexp", lambda f, a: f(a, dim=1), [i["u"](3, 5)]),
        # shapes and joins
        ("reshape", lambda f, a: f(a, 4, 3), [i["u"](2, 6)]),
        ("flatten", lambda f, a: f(a, 1), [i["u"](2, 3, 2)]),
        ("squeeze", lambda f, a: f(a, 1), [i["u"](3, 1, 2)]),
        ("unsqueeze", lambda f, a: f(a, 0), [i["u"](3, 2)]),
        ("transpose", lambda f, a: f(a, 0, 2), [i["u"](2, 3, 4)]),
        ("permute", lambda f, a: f(a, 2, 0, 1), [i["u"](2, 3, 4)]),
        ("cat", lambda f, a, b: f([a, b], dim=1), [i["u"](2, 3), i["u"](2, 2)]),
        ("stack", lambda f, a, b: f([a, b], dim=0), [i["u"](2, 3), i["u"](2, 3)]),
        ("split", lambda f, a: f(a, [1, 3], dim=1)[1], [i["u"](2, 4)]),
        ("chunk", lambda f, a: f(a, 2, dim=0)[0], [i["u"](4, 3)]),
        ("pad", lambda f, a: f(a, (1, 2, 0, 1)), [i["u"](1, 2, 3, 3)]),
        # layers
        ("linear", lambda f, x, w, b: f(x, w, b), [i["u"](3, 4), i["u"](5, 4), i["u"](5)]),
        ("conv2d", lambda f, x, w, b: f(x, w, b, padding=1), [i["u"](2, 2, 5, 5), i["u"](3, 2, 3, 3), i["u"](3)]),
        ("conv_transpose2d", lambda f, x, w: f(x, w, stride=2, padding=1),
         [i["u"](1, 2, 3, 3), i["u"](2, 3, 3, 3)]),
        ("max_pool2d", lambda f, x: f(x, 2), [i["distinct"](2, 2, 4, 4)]),
        ("avg_pool2d", lambda f, x: f(x, 2), [i["u"](2, 2, 4, 4)]),
        ("interpolate", lambda f, x: f(x, size=(5, 3), mode="bilinear"), [i["u"](1, 2, 3, 4)]),
        ("layer_norm", lambda f, x, w, b: f(x, (5,), w, b), [i["u"](3, 5), i["u"](5), i["u"](5)]),
        ("batch_norm", lambda f, x, w, b: f(x, None, None, w, b, training=True),
         [i["u"](4, 3), i["u"](3), i["u"](3)]),
        ("embedding", lambda f, idx, w: f(idx, w), [const(i["labels"](6, 5)), i["u"](5, 3)]),
        ("scaled_dot_product_attention", lambda f, q, k, v: f(q, k, v, is_causal=True),
         [i["u"](2, 4, 3), i["u"](2, 4, 3), i["u"](2, 4, 3)]),
        # losses
        ("cross_entropy", lambda f, x, t: f(x, t), [i["u"](4, 5), const(i["labels"](4, 5))]),
        ("mse_loss", lambda f, a, b: f(a, b), [i["u"](3, 4), i["u"](3, 4)]),
        ("binary_cross_entropy_with_logits", lambda f, x, t: f(x, t),
         [i["u"](3, 4), const(i["pos"](3, 4) / 2.0)]),
    ]


def run_gradcheck_table(only=(), out=print):
    """gradcheck each row (or only the named ones); print a table; return
    the exit code (1 if any op failed or is missing from minidl.functional)."""
    from . import functional as F
    from .gradcheck import gradcheck

    rows = gradcheck_rows(input_makers())
    unknown = set(only) - {name for name, _, _ in rows}
    if unknown:
        raise ValueError(f"gradcheck: no built-in check for {sorted(unknown)}")
    failures = 0
    out(f"{'op':<34}{'result':<8}{'seconds':>8}  detail")
    for name, call, inputs in rows:
        if only and name not in only:
            continue
        op = getattr(F, name, None)
        start = time.perf_counter()
        if op is None:
            result, detail = "FAIL", "not in minidl.functional"
            failures += 1
        else:
            try:
                gradcheck(lambda *xs, op=op, call=call: call(op, *xs), inputs)
                result, detail = "pass", ""
            except Exception as error:      # a failure, or an op that crashed: both are failures
                result, detail = "FAIL", f"{type(error).__name__}: {error}".splitlines()[0][:160]
                failures += 1
        out(f"{name:<34}{result:<8}{time.perf_counter() - start:8.3f}  {detail}")
    out(f"{failures} failed" if failures else "all checked ops pass")
    return 1 if failures else 0
