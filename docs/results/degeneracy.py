"""Where eigh-composition (PyTorch, JAX) fails and what the right answer is.

Writes docs/results/degeneracy_cases.json: for each case the input A, the cotangent Gbar,
the reference gradient of <Gbar, f(sym A)> (50-digit mpmath central differences, which
share no formula with any library), and PyTorch's and JAX's float64 gradients through
eigh. `cargo run --release --example degeneracy` then adds matgrad's gradients and prints
the table in docs/degeneracy.md.

Run: python3 -m venv .venv && .venv/bin/pip install jax numpy mpmath torch
     .venv/bin/python docs/results/degeneracy.py
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import torch
from mpmath import matrix, mp, mpf

jax.config.update("jax_enable_x64", True)
mp.dps = 50
rng = np.random.default_rng(2718)


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


def mp_projector(a, k):
    e, q = mp.eigsy(a)
    order = sorted(range(a.rows), key=lambda i: e[i])
    p = mp.zeros(a.rows, a.rows)
    for i in order[:k]:
        p += q[:, i] * q[:, i].T
    return p


def mp_grad(f, a_np, gbar_np):
    n = a_np.shape[0]
    a, gbar, h = matrix(a_np.tolist()), matrix(gbar_np.tolist()), mpf("1e-20")

    def phi(x):
        y = f(mp_sym(x))
        return mp.fsum(gbar[i, j] * y[i, j] for i in range(n) for j in range(n))

    g = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            e = mp.zeros(n, n)
            e[i, j] = h
            g[i, j] = float((phi(a + e) - phi(a - e)) / (2 * h))
    return g


def torch_grad(kind, a, gbar, k=2):
    x = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    s = 0.5 * (x + x.T)
    lam, u = torch.linalg.eigh(s)
    if kind == "logm":
        y = (u * torch.log(lam)) @ u.T
    else:
        y = u[:, :k] @ u[:, :k].T
    (torch.tensor(gbar) * y).sum().backward()
    return x.grad.numpy()


def jax_grad(kind, a, gbar, k=2):
    def phi(x):
        s = 0.5 * (x + x.T)
        lam, u = jnp.linalg.eigh(s)
        if kind == "logm":
            y = (u * jnp.log(lam)) @ u.T
        else:
            y = u[:, :k] @ u[:, :k].T
        return jnp.sum(gbar * y)
    return np.asarray(jax.grad(phi)(jnp.asarray(a)))


cases = []


def add(group, label, kind, a, k=2):
    n = a.shape[0]
    gbar = rng.standard_normal((n, n))
    f = (lambda m: mp.logm(m)) if kind == "logm" else (lambda m: mp_projector(m, k))
    cases.append({
        "group": group, "label": label, "kind": kind, "k": k, "a": a.tolist(), "gbar": gbar.tolist(),
        "reference": mp_grad(f, a, gbar).tolist(),
        "torch": torch_grad(kind, a, gbar, k).tolist(), "jax": jax_grad(kind, a, gbar, k).tolist(),
    })


add("logm at I", "A = I (3×3)", "logm", np.eye(3))
for gap in [1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12]:
    add("logm near a tie", f"gap {gap:.0e}", "logm", with_spectrum([0.7, 1.0, 1.0 + gap, 2.0]))
for trial in range(20):
    add("projector, tie in kept block", f"Q #{trial}", "projector", with_spectrum([1.0, 1.0, 2.0]), k=2)

def clean(x):
    if isinstance(x, list):
        return [clean(v) for v in x]
    if isinstance(x, dict):
        return {k: clean(v) for k, v in x.items()}
    return None if isinstance(x, float) and x != x else x  # NaN → null (JSON has no NaN)


cases = clean(cases)
meta = {"torch": torch.__version__, "jax": jax.__version__, "numpy": np.__version__}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "degeneracy_cases.json")
with open(out, "w") as fh:
    json.dump({"versions": meta, "cases": cases}, fh, allow_nan=False)
print(f"wrote {len(cases)} cases to {out} ({meta})")
