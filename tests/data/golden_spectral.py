"""Golden values for matgrad-spectral.

Two independent sources:
1. mpmath, 50 digits: the gradient of phi(A) = <Gbar, f(sym A)> by central differences
   with h = 1e-20 along every coordinate, where f(A) is computed by mpmath's own matrix
   functions (logm, sqrtm, expm) or eigensolver (eigsy, for projectors and eigenvalues).
   This uses none of matgrad's formulas and is exact to ~1e-30 even at repeated eigenvalues,
   which is where the interesting cases are.
2. JAX 0.10 (float64) on matrices with distinct eigenvalues, where its eigh-composition
   rules are right: value, VJP and JVP.

Run: python3 -m venv .venv && .venv/bin/pip install jax numpy mpmath
     .venv/bin/python tests/data/golden_spectral.py > tests/data/golden_spectral.json
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
from mpmath import mp, mpf, matrix

jax.config.update("jax_enable_x64", True)
mp.dps = 50
rng = np.random.default_rng(3141)


def orth(n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_spectrum(lams):
    q = orth(len(lams))
    a = q @ np.diag(lams) @ q.T
    return 0.5 * (a + a.T)


def mp_sym(a):
    n = a.rows
    return matrix([[(a[i, j] + a[j, i]) / 2 for j in range(n)] for i in range(n)])


def mp_eig_fn(a, fn):
    e, q = mp.eigsy(a)
    n = a.rows
    return q * mp.diag([fn(e[i]) for i in range(n)]) * q.T


def mp_projector(a, k, which):
    e, q = mp.eigsy(a)
    n = a.rows
    order = sorted(range(n), key=lambda i: e[i])
    keep = order[:k] if which == "smallest" else order[n - k:]
    p = mp.zeros(n, n)
    for i in keep:
        p += q[:, i] * q[:, i].T
    return p


def mp_eigvals(a):
    e, _ = mp.eigsy(a)
    return matrix(sorted([e[i] for i in range(a.rows)]))


MP_FUNCS = {
    "logm_sym": lambda a, p: mp.logm(a),
    "sqrtm_sym": lambda a, p: mp.sqrtm(a),
    "expm_sym": lambda a, p: mp.expm(a),
    "powm_sym": lambda a, p: mp_eig_fn(a, lambda x: x ** mpf(p["p"])),
    "eigh_projector": lambda a, p: mp_projector(a, p["k"], p["which"]),
    "eigvalsh": lambda a, p: mp_eigvals(a),
    "expm": lambda a, p: mp.expm(a),
    "logm": lambda a, p: mp.logm(a),
    "sqrtm": lambda a, p: mp.sqrtm(a),
}


def mp_vjp(op, params, a_np, gbar_np, raw=False):
    n = a_np.shape[0]
    a = matrix(a_np.tolist())
    gbar = matrix(gbar_np.tolist())
    h = mpf("1e-20")

    def phi(x):
        y = MP_FUNCS[op](x if raw else mp_sym(x), params)
        return mp.fsum(gbar[i, j] * y[i, j] for i in range(y.rows) for j in range(y.cols))

    g = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            e = mp.zeros(n, n)
            e[i, j] = h
            g[i, j] = float((phi(a + e) - phi(a - e)) / (2 * h))
    return g


def jax_fn(op, params):
    def f(a):
        a = 0.5 * (a + a.conj().T)
        lam, u = jnp.linalg.eigh(a)
        fl = {"logm_sym": jnp.log, "sqrtm_sym": jnp.sqrt, "expm_sym": jnp.exp,
              "powm_sym": lambda x: x ** params.get("p", 1.0)}[op](lam)
        return (u * fl) @ u.conj().T
    return f


def enc(x):
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return {"re": x.real.tolist(), "im": x.imag.tolist()}
    return {"re": x.tolist()}


cases = []

# mpmath cases: ties, near-ties, identity: the gradients PyTorch and JAX get wrong or NaN.
MP_CASES = [
    ("logm_sym at identity", "logm_sym", {}, np.eye(3)),
    ("logm_sym ties 1,1,2", "logm_sym", {}, with_spectrum([1.0, 1.0, 2.0])),
    ("sqrtm_sym ties 0.5,2,2", "sqrtm_sym", {}, with_spectrum([0.5, 2.0, 2.0])),
    ("expm_sym ties 1,1,1,3", "expm_sym", {}, with_spectrum([1.0, 1.0, 1.0, 3.0])),
    ("powm_sym 1.5 near tie 1e-9", "powm_sym", {"p": 1.5}, with_spectrum([1.0, 1.0 + 1e-9, 2.5])),
    ("logm_sym near tie 1e-12", "logm_sym", {}, with_spectrum([0.7, 1.0, 1.0 + 1e-12])),
    ("eigh_projector 2 smallest, tie in kept block", "eigh_projector", {"k": 2, "which": "smallest"}, with_spectrum([1.0, 1.0, 2.0])),
    ("eigh_projector 1 largest, tie in discarded block", "eigh_projector", {"k": 1, "which": "largest"}, with_spectrum([1.0, 1.0, 2.0])),
    ("eigvalsh distinct", "eigvalsh", {}, with_spectrum([-1.0, 0.5, 2.0])),
]
for name, op, params, a in MP_CASES:
    n = a.shape[0]
    if op == "eigvalsh":
        gbar = rng.standard_normal((n, 1))
    else:
        gbar = rng.standard_normal((n, n))
    cases.append({"name": name, "source": "mpmath 50-digit central differences", "op": op, "params": params,
                  "input": enc(a), "cotangent": enc(gbar), "vjp": enc(mp_vjp(op, params, a, gbar))})

# General (non-symmetric) matrices: expm, logm, sqrtm through mpmath's own algorithms.
for op in ["expm", "logm", "sqrtm"]:
    a = rng.standard_normal((3, 3)) * 0.4 + 2.0 * np.eye(3)
    gbar = rng.standard_normal((3, 3))
    cases.append({"name": f"{op} general 3x3", "source": "mpmath 50-digit central differences", "op": op, "params": {},
                  "raw_input": True, "input": enc(a), "cotangent": enc(gbar), "vjp": enc(mp_vjp(op, {}, a, gbar, raw=True))})
# a defective (Jordan) matrix: the eigendecomposition route fails, the block identity does not
a = np.array([[2.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 2.0]])
gbar = rng.standard_normal((3, 3))
cases.append({"name": "logm Jordan block", "source": "mpmath 50-digit central differences", "op": "logm", "params": {},
              "raw_input": True, "input": enc(a), "cotangent": enc(gbar), "vjp": enc(mp_vjp("logm", {}, a, gbar, raw=True))})

# JAX cases: distinct spectra (real and complex), value + VJP + JVP.
for op, params, a in [
    ("logm_sym", {}, with_spectrum([0.3, 1.0, 2.0, 5.0])),
    ("sqrtm_sym", {}, with_spectrum([0.3, 1.0, 2.0, 5.0])),
    ("expm_sym", {}, with_spectrum([-1.0, 0.0, 0.5, 1.5])),
    ("powm_sym", {"p": -0.5}, with_spectrum([0.3, 1.0, 2.0, 5.0])),
]:
    f = jax_fn(op, params)
    gbar = rng.standard_normal(a.shape)
    adot = rng.standard_normal(a.shape)
    y, vjp = jax.vjp(f, jnp.asarray(a))
    _, ydot = jax.jvp(f, (jnp.asarray(a),), (jnp.asarray(adot),))
    cases.append({"name": f"{op} distinct (JAX)", "source": f"jax {jax.__version__} float64", "op": op, "params": params,
                  "input": enc(a), "output": enc(y), "cotangent": enc(gbar), "vjp": enc(vjp(jnp.asarray(gbar))[0]),
                  "tangent": enc(adot), "jvp": enc(ydot)})

# complex Hermitian, distinct spectrum; JAX's VJP is conjugated to PyTorch's convention.
n = 3
z = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
q, _ = np.linalg.qr(z)
a = q @ np.diag([0.5, 1.0, 3.0]) @ q.conj().T
a = 0.5 * (a + a.conj().T)
f = jax_fn("logm_sym", {})
gbar = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
adot = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
phi = lambda x: jnp.real(jnp.sum(jnp.conj(gbar) * f(x)))
g = np.conj(jax.grad(phi)(jnp.asarray(a)))
y = f(jnp.asarray(a))
_, ydot = jax.jvp(f, (jnp.asarray(a),), (jnp.asarray(adot),))
cases.append({"name": "logm_sym complex Hermitian (JAX)", "source": f"jax {jax.__version__} float64", "op": "logm_sym", "params": {},
              "input": enc(a), "output": enc(y), "cotangent": enc(gbar), "vjp": enc(g), "tangent": enc(adot), "jvp": enc(ydot)})

# SVD (JAX): singular values of real and complex rectangular matrices, and a loss that reads
# U and V separately: U diag(S² + w) Vᴴ with w = (0.1, 0.4, 0.7, ...).
def svd_weighted(x):
    u, s, vh = jnp.linalg.svd(x, full_matrices=False)
    w = 0.1 + 0.3 * jnp.arange(s.shape[0])
    return (u * (s * s + w)) @ vh


def svdvals(x):
    return jnp.linalg.svd(x, compute_uv=False).reshape(-1, 1)


for name, f, a in [
    ("svdvals", svdvals, rng.standard_normal((4, 3))),
    ("svdvals", svdvals, rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))),
    ("svd_weighted", svd_weighted, rng.standard_normal((3, 5))),
    ("svd_weighted", svd_weighted, rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))),
]:
    ja = jnp.asarray(a)
    y = f(ja)
    yb = rng.standard_normal(y.shape) + (1j * rng.standard_normal(y.shape) if np.iscomplexobj(y) else 0)
    ad = rng.standard_normal(a.shape) + (1j * rng.standard_normal(a.shape) if np.iscomplexobj(a) else 0)
    phi = lambda x: jnp.real(jnp.sum(jnp.conj(yb) * f(x)))
    g = np.asarray(jax.grad(phi)(ja))
    g = np.conj(g) if np.iscomplexobj(g) else g
    _, yd = jax.jvp(f, (ja,), (jnp.asarray(ad),))
    kind = "complex" if np.iscomplexobj(a) else "real"
    cases.append({"name": f"{name} {kind} {a.shape[0]}x{a.shape[1]} (JAX)", "source": f"jax {jax.__version__} float64", "op": name,
                  "params": {}, "raw_input": True, "input": enc(a), "output": enc(y), "cotangent": enc(yb), "vjp": enc(g),
                  "tangent": enc(ad), "jvp": enc(yd)})

# eig of general matrices (PyTorch 2.15, float64): an order- and phase-invariant loss
# L = sum_i Re(lambda_i) * sum_j c_j |V_ji|^2 with c = (1, 2, ..., n), pairing each eigenvalue
# with its own eigenvector, so the libraries' different orderings do not matter.
import torch
for kind, a in [("real", rng.standard_normal((3, 3))), ("complex", rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3)))]:
    x = torch.tensor(a, requires_grad=True)
    lam, v = torch.linalg.eig(x)
    c = torch.arange(1, 4, dtype=torch.float64)
    loss = (lam.real * ((v.abs() ** 2) * c[:, None]).sum(0)).sum()
    loss.backward()
    cases.append({"name": f"eig weighted {kind} 3x3 (PyTorch)", "source": f"torch {torch.__version__} float64", "op": "eig_weighted",
                  "params": {}, "raw_input": True, "input": enc(a), "cotangent": enc(np.ones((1, 1))), "vjp": enc(x.grad.numpy())})

print(json.dumps({"cases": cases}))
