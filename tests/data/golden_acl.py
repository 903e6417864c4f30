"""Golden values for the analytic kernel banks (gabor_bank, log_bank,
gaussian_derivative_bank), computed independently with JAX (float64).

Run:  python3 -m venv .venv && .venv/bin/pip install jax numpy
      .venv/bin/python tests/data/golden_acl.py > tests/data/golden_acl.json

Same conventions as golden_layers.py (whose `run` produces the cases). The kernels are
written from the formulas in docs/math/acl.md, not from matgrad's code: Gabor with jnp.cos
(matgrad uses the real part of a complex exponential), and the Gaussian derivative as the
n-th derivative along x' taken by JAX's own autodiff of the Gaussian (matgrad uses the
Hermite recurrence).
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

from golden_layers import rng, run  # the same encoding and seeded stream

jax.config.update("jax_enable_x64", True)


def grid(kh, kw):
    t = np.arange(kh * kw)
    return (t % kw) - (kw - 1) / 2.0, (t // kw) - (kh - 1) / 2.0


def gabor(kh, kw):
    x, y = grid(kh, kw)

    def f(p):
        s, th, lam, g, psi = (jnp.exp(p[:, 0:1]), p[:, 1:2], jnp.exp(p[:, 2:3]), jnp.exp(p[:, 3:4]), p[:, 4:5])
        xr = x * jnp.cos(th) + y * jnp.sin(th)
        yr = -x * jnp.sin(th) + y * jnp.cos(th)
        return jnp.exp(-(xr**2 + g**2 * yr**2) / (2 * s**2)) * jnp.cos(2 * jnp.pi * xr / lam + psi)
    return f


def log_kernel(kh, kw):
    x, y = grid(kh, kw)

    def f(p):
        s = jnp.exp(p[:, 0:1])
        q = (x**2 + y**2) / (2 * s**2)
        return -(1 - q) * jnp.exp(-q) / (jnp.pi * s**4)
    return f


def gaussian_derivative(order, aspect, kh, kw):
    x, y = grid(kh, kw)

    def one(s, th, xi, yi):
        def along(u):
            v = -xi * jnp.sin(th) + yi * jnp.cos(th)
            return jnp.exp(-u**2 / (2 * s**2) - v**2 / (2 * (aspect * s) ** 2)) / (2 * jnp.pi * aspect * s**2)
        d = along
        for _ in range(order):
            d = jax.grad(d)
        return d(xi * jnp.cos(th) + yi * jnp.sin(th))

    def f(p):
        s, th = jnp.exp(p[:, 0]), p[:, 1]
        per_kernel = jax.vmap(lambda si, ti: jax.vmap(lambda xi, yi: one(si, ti, xi, yi))(x, y))
        return per_kernel(s, th)
    return f


def params(m, n, scale=0.5):
    return scale * rng.standard_normal((m, n))


CASES = [
    ("gabor_bank", "gabor_bank", {"kh": 5, "kw": 5}, gabor(5, 5), [params(3, 5) + np.array([0.4, 0.0, 1.2, 0.0, 0.0])]),
    ("gabor_bank_3x7", "gabor_bank", {"kh": 3, "kw": 7}, gabor(3, 7), [params(2, 5) + np.array([0.2, 1.0, 1.0, 0.1, 0.5])]),
    ("log_bank", "log_bank", {"kh": 5, "kw": 5}, log_kernel(5, 5), [params(3, 1) + 0.3]),
    ("log_bank_4x6", "log_bank", {"kh": 4, "kw": 6}, log_kernel(4, 6), [params(2, 1)]),
    ("gd1", "gaussian_derivative_bank", {"order": 1, "aspect": 1.0, "kh": 5, "kw": 5},
     gaussian_derivative(1, 1.0, 5, 5), [params(3, 2) + np.array([0.2, 0.0])]),
    ("gd2_aspect", "gaussian_derivative_bank", {"order": 2, "aspect": 0.6, "kh": 5, "kw": 3},
     gaussian_derivative(2, 0.6, 5, 3), [params(2, 2) + np.array([0.1, 1.0])]),
    ("gd3", "gaussian_derivative_bank", {"order": 3, "aspect": 1.5, "kh": 4, "kw": 4},
     gaussian_derivative(3, 1.5, 4, 4), [params(2, 2)]),
    ("gd0", "gaussian_derivative_bank", {"order": 0, "aspect": 2.0, "kh": 3, "kw": 3},
     gaussian_derivative(0, 2.0, 3, 3), [params(2, 2)]),
]

if __name__ == "__main__":
    print(json.dumps({"generator": f"jax {jax.__version__}, numpy {np.__version__}, float64", "cases": run(CASES)}))
