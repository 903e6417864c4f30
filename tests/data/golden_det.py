"""Exact golden values for det at singular matrices (issue 7, bug 4), by sympy in rational
arithmetic: det(A), its gradient adj(A)^T, and the Hessian-vector product
d/dt grad det(A + tV) at t = 0 (the second derivative of a polynomial, exact), for
integer matrices of rank n-1, n-2 and n-3 and one complex (Gaussian-integer) matrix; plus
JAX's float64 gradient for the issue's 4x4 rank-3 case as an independent cross-check.

Run: python3 -m venv .venv && .venv/bin/pip install sympy jax
     .venv/bin/python tests/data/golden_det.py > tests/data/golden_det.json
"""
import json
import sympy as sp

def grad_and_hvp(A, V):
    n = A.shape[0]
    X = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"x{i}_{j}"))
    d = X.det()
    grad = sp.Matrix(n, n, lambda i, j: sp.diff(d, X[i, j]))
    t = sp.Symbol("t")
    sub = {X[i, j]: A[i, j] + t * V[i, j] for i in range(n) for j in range(n)}
    g_t = grad.subs(sub)
    hv = g_t.diff(t).subs(t, 0)
    at = {X[i, j]: A[i, j] for i in range(n) for j in range(n)}
    return d.subs(at), grad.subs(at), hv

def enc(M):
    rows = [[complex(sp.N(M[i, j], 30)) for j in range(M.shape[1])] for i in range(M.shape[0])]
    out = {"re": [[z.real for z in r] for r in rows]}
    if any(z.imag != 0 for r in rows for z in r):
        out["im"] = [[z.imag for z in r] for r in rows]
    return out

I = sp.I
cases = {
    # rank 3: last row = first + second
    "rank3_4x4": sp.Matrix([[1, 2, 0, 3], [0, 1, 4, 1], [2, -1, 1, 0], [1, 3, 4, 4]]),
    # rank 2: rows 3, 4 combinations of rows 1, 2
    "rank2_4x4": sp.Matrix([[1, 2, 0, 3], [0, 1, 4, 1], [1, 3, 4, 4], [2, 5, 4, 7]]),
    # rank 1
    "rank1_3x3": sp.Matrix([[1, 2, -1], [2, 4, -2], [-3, -6, 3]]),
    # zero matrix: gradient 0, Hessian nonzero for n = 2
    "zero_2x2": sp.zeros(2, 2),
    # complex rank 2 (third row = i * first)
    "complex_rank2_3x3": sp.Matrix([[1 + I, 2, -I], [0, 1 - 2 * I, 3], [-1 + I, 2 * I, 1]]),
}
directions = {
    "rank3_4x4": sp.Matrix([[1, 0, 2, -1], [0, 3, -1, 1], [2, 1, 0, 1], [-1, 1, 1, 2]]),
    "rank2_4x4": sp.Matrix([[0, 1, -1, 2], [1, 0, 1, 1], [-2, 1, 3, 0], [1, 1, 0, -1]]),
    "rank1_3x3": sp.Matrix([[1, -1, 2], [0, 1, 1], [3, 0, -1]]),
    "zero_2x2": sp.Matrix([[1, 2], [3, 4]]),
    "complex_rank2_3x3": sp.Matrix([[1, I, 0], [2, -1, 1 + I], [0, 1, -I]]),
}
out = []
for name, A in cases.items():
    V = directions[name]
    d, g, hv = grad_and_hvp(A, V)
    # PyTorch/matgrad convention for complex: the gradient of Re(conj(ybar) * det) with
    # ybar = 1 is conj(d det/dA) = conj(adj(A)^T)
    g_conv = g.applyfunc(sp.conjugate)
    hv_conv = hv.applyfunc(sp.conjugate)
    out.append({"name": name, "a": enc(A), "v": enc(V), "det": complex(sp.N(d)).real,
                "det_im": complex(sp.N(d)).imag, "grad": enc(g_conv), "hvp": enc(hv_conv)})

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    A = np.array(cases["rank3_4x4"].tolist(), dtype=np.float64)
    gj = np.asarray(jax.grad(jnp.linalg.det)(jnp.asarray(A)))
    out.append({"name": "rank3_4x4_jax_grad", "a": {"re": A.tolist()},
                "grad": {"re": gj.tolist()}})
except ImportError:
    pass
print(json.dumps(out, indent=1))
