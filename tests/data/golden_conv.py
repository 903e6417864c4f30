"""Golden values for matgrad-layers' convolution family (conv2d, pooling, weighted_conv2d,
tied_density, crelu), computed with PyTorch
(float64): the reference the issue names ("match PyTorch's conv2d numerically").

Run:  python3 -m venv .venv && .venv/bin/pip install torch numpy
      .venv/bin/python tests/data/golden_conv.py > tests/data/golden_conv.json

Layout conversion (docs/math/conv2d.md): matgrad stores a batch of B maps with C channels
of H×W as the C × (B·H·W) matrix X[c, b·H·W + h·W + w]; kernels as C_out × (C·kh·kw), which
is PyTorch's weight.reshape(C_out, -1). VJP of phi(X) = sum(Ybar * f(X)) by autograd; JVP by
torch.func.jvp. Real cases only; complex conv2d is checked by the Rust rule tests and the
registry sweep (finite differences, dot product, second order).
"""
import json

import numpy as np
import torch
from torch.func import jvp

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261123)


def to_nchw(x, b, h, w):
    c = x.shape[0]
    return x.reshape(c, b, h, w).permute(1, 0, 2, 3)


def from_nchw(y):
    b, c, h, w = y.shape
    return y.permute(1, 0, 2, 3).reshape(c, b * h * w)


def conv(b, h, w, kh, kw, stride, padding, dilation, bias):
    def f(x, k, *rest):
        cout = k.shape[0]
        weight = k.reshape(cout, x.shape[0], kh, kw)
        y = torch.nn.functional.conv2d(to_nchw(x, b, h, w), weight, rest[0][:, 0] if bias else None,
                                       stride=stride, padding=padding, dilation=dilation)
        return from_nchw(y)
    return f


def wconv(b, h, w, kh, kw, stride, padding):
    """weighted convolution: PyTorch's conv2d with the weight scaled tap by tap by alpha beta^T"""
    def f(x, k, a, bb):
        weight = k.reshape(k.shape[0], x.shape[0], kh, kw) * (a @ bb.T)[None, None]
        return from_nchw(torch.nn.functional.conv2d(to_nchw(x, b, h, w), weight, stride=stride, padding=padding))
    return f


def tied(den):
    return torch.cat([den, torch.ones(1, 1, dtype=den.dtype), torch.flip(den, dims=(0,))])


def crelu(x):
    return torch.cat([torch.relu(x), torch.relu(-x)])


def avg(b, h, w, k, stride, padding):
    return lambda x: from_nchw(torch.nn.functional.avg_pool2d(to_nchw(x, b, h, w), k, stride, padding,
                                                              count_include_pad=True))


def mx(b, h, w, k, stride, padding):
    return lambda x: from_nchw(torch.nn.functional.max_pool2d(to_nchw(x, b, h, w), k, stride, padding))


def gap(b, h, w):
    return lambda x: to_nchw(x, b, h, w).mean(dim=(2, 3))


def real(m, n):
    return rng.standard_normal((m, n))


def geo(b, h, w, kh, kw, stride=1, padding=0, dilation=1):
    return {"batch": b, "height": h, "width": w, "kh": kh, "kw": kw, "stride": stride,
            "padding": padding, "dilation": dilation}


# name, registry op, params, function, inputs
CASES = [
    ("conv2d_3x3", "conv2d", geo(2, 5, 4, 3, 3), conv(2, 5, 4, 3, 3, 1, 0, 1, False), [real(3, 40), real(4, 27)]),
    ("conv2d_stride_pad", "conv2d", geo(2, 6, 5, 3, 2, 2, 1), conv(2, 6, 5, 3, 2, 2, 1, 1, False),
     [real(2, 60), real(3, 12)]),
    ("conv2d_dilation", "conv2d", geo(1, 7, 7, 2, 3, 1, 2, 2), conv(1, 7, 7, 2, 3, 1, 2, 2, False),
     [real(2, 49), real(2, 12)]),
    ("conv2d_1x1", "conv2d", geo(3, 2, 3, 1, 1), conv(3, 2, 3, 1, 1, 1, 0, 1, False), [real(4, 18), real(5, 4)]),
    ("avg_pool2d", "avg_pool2d", geo(2, 4, 6, 2, 2, 2), avg(2, 4, 6, 2, 2, 0), [real(3, 48)]),
    ("avg_pool2d_pad", "avg_pool2d", geo(1, 5, 5, 3, 3, 2, 1), avg(1, 5, 5, 3, 2, 1), [real(2, 25)]),
    ("max_pool2d", "max_pool2d", geo(2, 4, 6, 2, 2, 2), mx(2, 4, 6, 2, 2, 0), [real(3, 48)]),
    ("max_pool2d_pad", "max_pool2d", geo(1, 5, 5, 3, 3, 2, 1), mx(1, 5, 5, 3, 2, 1), [real(2, 25)]),
    ("global_avg_pool", "global_avg_pool", {"batch": 2, "height": 3, "width": 2}, gap(2, 3, 2), [real(4, 12)]),
    ("weighted_conv2d", "weighted_conv2d", geo(2, 5, 4, 3, 3, 1, 1), wconv(2, 5, 4, 3, 3, 1, 1),
     [real(2, 40), real(3, 18), real(3, 1), real(3, 1)]),
    ("weighted_conv2d_rect_stride", "weighted_conv2d", geo(1, 6, 7, 2, 3, 2, 0), wconv(1, 6, 7, 2, 3, 2, 0),
     [real(3, 42), real(2, 18), real(2, 1), real(3, 1)]),
    ("tied_density", "tied_density", {}, tied, [real(3, 1)]),
    ("crelu", "crelu", {}, crelu, [real(3, 7)]),
]


def enc(x):
    x = np.asarray(x.detach() if torch.is_tensor(x) else x)
    if x.ndim == 0:
        x = x.reshape(1, 1)
    return {"re": x.tolist()}


out = []
for name, op, params, f, xs in CASES:
    xs = [torch.tensor(x, requires_grad=True) for x in xs]
    y = f(*xs)
    ybar = torch.tensor(rng.standard_normal(tuple(y.shape)))
    grads = torch.autograd.grad((y * ybar).sum(), xs)
    xdots = [torch.tensor(rng.standard_normal(tuple(x.shape))) for x in xs]
    _, ydot = jvp(f, tuple(x.detach() for x in xs), tuple(xdots))
    out.append({
        "name": name, "op": op, "params": params,
        "inputs": [enc(x) for x in xs], "output": enc(y), "cotangent": enc(ybar),
        "vjp": [enc(g) for g in grads], "tangents": [enc(d) for d in xdots], "jvp": enc(ydot),
    })

print(json.dumps({"generator": f"torch {torch.__version__}, numpy {np.__version__}, float64", "cases": out}))
