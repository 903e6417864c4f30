"""Golden values for matgrad-engine's core ops, computed independently with JAX (float64).

Run:  python3 -m venv .venv && .venv/bin/pip install jax numpy
      .venv/bin/python tests/data/golden_engine.py > tests/data/golden_engine.json

For each case: inputs X_i, a cotangent Ybar and tangents Xdot_i, all from numpy's seeded
generator; the output f(X), the VJP and the JVP. Gradient convention: matgrad (like
PyTorch) returns dL/dRe z + i dL/dIm z for complex inputs; JAX's grad returns its
conjugate, so complex VJPs are conjugated here. The VJP is computed as the gradient of
phi(X) = Re sum(conj(Ybar) * f(X)), which is exactly what matgrad's vjp returns.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
rng = np.random.default_rng(20261123)


def real(m, n):
    return rng.standard_normal((m, n))


def cplx(m, n):
    return rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))


def spd(n):
    g = rng.standard_normal((n, n))
    return g @ g.T + n * np.eye(n)


def positive(m, n):
    return rng.uniform(0.5, 2.0, (m, n))


def well(n, make):
    return make(n, n) + 3.0 * np.eye(n)


def sym(a):
    return 0.5 * (a + a.conj().T)


def kron(a, b):
    return jnp.kron(a, b)


def o2p(f, eps):
    c = f.T @ f / f.shape[0] + eps * jnp.eye(f.shape[1])
    lam, u = jnp.linalg.eigh(0.5 * (c + c.T))
    return (u * jnp.log(lam)) @ u.T


def ncut(f):
    d = f @ (f.T @ jnp.ones((f.shape[0], 1)))
    z = f / jnp.sqrt(d)
    return z @ jnp.linalg.solve(z.T @ z, z.T)


def bmm(a, b, k, fa, fb):
    """Stacked blocks: C_b = op(A_b) op(B_b), op the identity or the adjoint."""
    op = {"plain": lambda x: x, "adjoint": lambda x: x.conj().T}
    p, r = a.shape[0] // k, b.shape[0] // k
    return jnp.concatenate([op[fa](a[i * p:(i + 1) * p]) @ op[fb](b[i * r:(i + 1) * r]) for i in range(k)], axis=0)


def gram(f, k, alpha, ridge):
    """Stacked blocks: C_b = alpha F_b^H F_b + ridge I."""
    m, d = f.shape[0] // k, f.shape[1]
    return jnp.concatenate([alpha * f[i * m:(i + 1) * m].conj().T @ f[i * m:(i + 1) * m] + ridge * jnp.eye(d)
                            for i in range(k)], axis=0)


def herm_sum(x, k, alpha):
    n = x.shape[1]
    return jnp.concatenate([alpha * (x[i * n:(i + 1) * n] + x[i * n:(i + 1) * n].conj().T) for i in range(k)], axis=0)


def softplus(x):
    return jnp.logaddexp(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + jnp.exp(-x))


# name, function, inputs
CASES = [
    ("add", lambda a, b: a + b, [real(2, 3), real(2, 3)]),
    ("sub_complex", lambda a, b: a - b, [cplx(2, 3), cplx(2, 3)]),
    ("scale", lambda a: -1.5 * a, [real(3, 2)]),
    ("matmul", lambda a, b: a @ b, [real(3, 4), real(4, 2)]),
    ("matmul_complex", lambda a, b: a @ b, [cplx(3, 4), cplx(4, 2)]),
    ("transpose", lambda a: a.T, [real(2, 3)]),
    ("adjoint_complex", lambda a: a.conj().T, [cplx(2, 3)]),
    ("conj_complex", lambda a: a.conj(), [cplx(2, 2)]),
    ("real_complex", lambda a: jnp.real(a), [cplx(2, 3)]),
    ("imag_complex", lambda a: jnp.imag(a), [cplx(2, 3)]),
    ("mul", lambda a, b: a * b, [real(2, 3), real(2, 3)]),
    ("div_complex", lambda a, b: a / b, [cplx(2, 3), cplx(2, 3)]),
    ("exp", jnp.exp, [real(2, 3)]),
    ("log", jnp.log, [positive(2, 3)]),
    ("log_complex", jnp.log, [cplx(2, 2)]),
    ("sqrt", jnp.sqrt, [positive(2, 3)]),
    ("powf", lambda a: a ** 2.5, [positive(2, 3)]),
    ("tanh", jnp.tanh, [real(2, 3)]),
    ("sigmoid", sigmoid, [real(2, 3)]),
    ("relu", lambda a: jnp.maximum(a, 0.0), [real(3, 3)]),
    ("abs", jnp.abs, [real(3, 3)]),
    ("abs_complex", jnp.abs, [cplx(2, 3)]),
    ("softplus", softplus, [real(2, 3)]),
    ("sum_rows", lambda a: jnp.sum(a, axis=0, keepdims=True), [real(3, 4)]),
    ("sum_cols", lambda a: jnp.sum(a, axis=1, keepdims=True), [real(3, 4)]),
    ("mean_all", lambda a: jnp.mean(a).reshape(1, 1), [real(3, 4)]),
    ("trace", lambda a: jnp.trace(a).reshape(1, 1), [real(4, 4)]),
    ("norm_complex", lambda a: jnp.linalg.norm(a).reshape(1, 1), [cplx(3, 2)]),
    ("inner_complex", lambda a, b: jnp.sum(jnp.conj(a) * b).reshape(1, 1), [cplx(2, 3), cplx(2, 3)]),
    ("diag", lambda a: jnp.diag(a).reshape(-1, 1), [real(3, 4)]),
    ("vec", lambda a: a.T.reshape(-1, 1), [real(3, 2)]),
    ("slice", lambda a: a[1:3, 0:2], [real(4, 3)]),
    ("hcat", lambda a, b: jnp.concatenate([a, b], axis=1), [real(2, 3), real(2, 1)]),
    ("vcat", lambda a, b: jnp.concatenate([a, b], axis=0), [real(2, 3), real(1, 3)]),
    ("add_identity", lambda a: a + 2.0 * jnp.eye(a.shape[0]), [real(3, 3)]),
    ("inv", jnp.linalg.inv, [well(4, real)]),
    ("inv_complex", jnp.linalg.inv, [well(3, cplx)]),
    ("solve", jnp.linalg.solve, [well(4, real), real(4, 2)]),
    ("solve_complex", jnp.linalg.solve, [well(3, cplx), cplx(3, 2)]),
    ("det", lambda a: jnp.linalg.det(a).reshape(1, 1), [well(4, real)]),
    ("det_complex", lambda a: jnp.linalg.det(a).reshape(1, 1), [well(3, cplx)]),
    ("logdet", lambda a: jnp.linalg.slogdet(a)[1].reshape(1, 1), [well(4, real)]),
    ("cholesky_sym", lambda a: jnp.linalg.cholesky(sym(a)), [spd(4)]),
    ("kron", kron, [real(2, 3), real(3, 2)]),
    ("kron_complex", kron, [cplx(2, 2), cplx(2, 1)]),
    ("neg", lambda a: -a, [real(2, 3)]),
    ("add_scalar", lambda a: a + 0.5, [real(2, 3)]),
    ("mul_scalar", lambda a, s: s * a, [real(2, 3), real(1, 1)]),
    ("mul_scalar_complex", lambda a, s: s * a, [cplx(2, 2), cplx(1, 1)]),
    ("scale_complex", lambda a: (0.3 - 1.2j) * a, [cplx(2, 2)]),
    ("to_complex", lambda a: a.astype(jnp.complex128), [real(2, 3)]),
    ("broadcast_row", lambda a: jnp.broadcast_to(a, (3, a.shape[1])), [real(1, 4)]),
    ("embed", lambda a: jnp.zeros((4, 5)).at[1:3, 2:5].set(a), [real(2, 3)]),
    ("diag_embed", lambda a: jnp.zeros((3, 4)).at[jnp.arange(3), jnp.arange(3)].set(a[:, 0]), [real(3, 1)]),
    ("tril_scaled", lambda a: jnp.tril(a) - 0.5 * jnp.diag(jnp.diag(a)), [real(4, 4)]),
    ("logdet_spd_sym", lambda a: jnp.linalg.slogdet(sym(a))[1].reshape(1, 1), [spd(4)]),
    ("o2p", lambda f: o2p(f, 1e-2), [real(30, 3)]),
    ("ncut_projector", ncut, [positive(7, 3)]),
    ("bmm", lambda a, b: bmm(a, b, 3, "plain", "plain"), [real(6, 4), real(12, 3)]),
    ("bmm_gram", lambda a, b: bmm(a, b, 3, "adjoint", "plain"), [real(12, 2), real(12, 2)]),
    ("take_rows", lambda a: a[np.array([2, 0, 2])], [real(4, 3)]),
    ("take_rows_complex", lambda a: a[np.array([1, 2])], [cplx(3, 2)]),
    ("scatter_rows", lambda a: jnp.zeros((4, 2)).at[np.array([2, 0, 2])].add(a), [real(3, 2)]),
    ("bmm_complex_hh", lambda a, b: bmm(a, b, 2, "adjoint", "adjoint"), [cplx(6, 2), cplx(8, 3)]),
    ("gram", lambda f: gram(f, 1, 1.0, 0.0), [real(5, 3)]),
    ("gram_cov_batched", lambda f: gram(f, 3, 0.25, 0.01), [real(12, 2)]),
    ("gram_complex_wide", lambda f: gram(f, 2, -0.5, 0.3), [cplx(4, 3)]),
    ("herm_sum_complex", lambda x: herm_sum(x, 2, 0.7), [cplx(6, 3)]),
]


# Each case names the registry op it checks (`matgrad ops`) and that op's parameters, so the
# Rust side dispatches through the registry alone.
OP = {
    "sub_complex": ("sub", {}), "scale": ("scale", {"c": -1.5}),
    "matmul_complex": ("matmul", {}), "adjoint_complex": ("adjoint", {}),
    "conj_complex": ("conj", {}), "real_complex": ("real", {}), "imag_complex": ("imag", {}),
    "div_complex": ("div", {}), "log_complex": ("log", {}), "powf": ("powf", {"p": 2.5}),
    "abs_complex": ("abs", {}), "sum_rows": ("sum", {"axis": "rows"}),
    "sum_cols": ("sum", {"axis": "cols"}), "mean_all": ("mean", {"axis": "all"}),
    "norm_complex": ("norm", {}), "inner_complex": ("inner", {}),
    "slice": ("slice", {"rows": "1:3", "cols": "0:2"}), "add_identity": ("add_identity", {"c": 2}),
    "inv_complex": ("inv", {}), "solve_complex": ("solve", {}), "det_complex": ("det", {}),
    "cholesky_sym": ("cholesky", {}), "kron_complex": ("kron", {}), "add_scalar": ("add_scalar", {"c": 0.5}),
    "mul_scalar_complex": ("mul_scalar", {}), "scale_complex": ("scale_complex", {"re": 0.3, "im": -1.2}),
    "broadcast_row": ("broadcast_to", {"m": 3, "n": 4}),
    "embed": ("embed", {"m": 4, "n": 5, "r0": 1, "c0": 2}), "diag_embed": ("diag_embed", {"m": 3, "n": 4}),
    "tril_scaled": ("tril_scaled", {"d": 0.5}), "logdet_spd_sym": ("logdet_spd", {}),
    "o2p": ("o2p", {"eps": 0.01}),
    "bmm": ("bmm", {"batch": 3}), "bmm_gram": ("bmm", {"batch": 3, "a": "adjoint"}),
    "bmm_complex_hh": ("bmm", {"batch": 2, "a": "adjoint", "b": "adjoint"}),
    "take_rows": ("take_rows", {"idx": "2,0,2"}), "take_rows_complex": ("take_rows", {"idx": "1,2"}),
    "scatter_rows": ("scatter_rows", {"idx": "2,0,2", "m": 4}),
    "gram_cov_batched": ("gram", {"batch": 3, "alpha": 0.25, "ridge": 0.01}),
    "gram_complex_wide": ("gram", {"batch": 2, "alpha": -0.5, "ridge": 0.3}),
    "herm_sum_complex": ("herm_sum", {"batch": 2, "alpha": 0.7}),
}


def enc(x):
    x = np.asarray(x)
    if x.ndim == 0:
        x = x.reshape(1, 1)
    if np.iscomplexobj(x):
        return {"re": x.real.tolist(), "im": x.imag.tolist()}
    return {"re": x.tolist()}


def like(x):
    x = np.asarray(x)
    if np.iscomplexobj(x):
        return rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    return rng.standard_normal(x.shape)


out = []
for name, f, xs in CASES:
    xs = [jnp.asarray(x) for x in xs]
    y = f(*xs)
    ybar = like(y)
    xdots = [like(x) for x in xs]

    def phi(*args):
        return jnp.real(jnp.sum(jnp.conj(ybar) * f(*args)))

    grads = jax.grad(phi, argnums=tuple(range(len(xs))))(*xs)
    grads = [np.conj(g) if np.iscomplexobj(g) else g for g in grads]
    _, ydot = jax.jvp(f, tuple(xs), tuple(jnp.asarray(d) for d in xdots))
    op, params = OP.get(name, (name, {}))
    out.append({
        "name": name,
        "op": op,
        "params": params,
        "inputs": [enc(x) for x in xs],
        "output": enc(y),
        "cotangent": enc(ybar),
        "vjp": [enc(g) for g in grads],
        "tangents": [enc(d) for d in xdots],
        "jvp": enc(ydot),
    })

print(json.dumps({"generator": f"jax {jax.__version__}, numpy {np.__version__}, float64", "cases": out}))
