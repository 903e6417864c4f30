"""Golden values for matgrad-layers' ops, computed independently with JAX (float64).

Run:  python3 -m venv .venv && .venv/bin/pip install jax numpy
      .venv/bin/python tests/data/golden_layers.py > tests/data/golden_layers.json

Same conventions as golden_engine.py: for each case, inputs X_i, a cotangent Ybar and
tangents Xdot_i from numpy's seeded generator; the output f(X), the VJP (the gradient of
Re sum(conj(Ybar) * f(X)), conjugated for complex inputs to match matgrad's convention)
and the JVP. Each case names the registry op (`matgrad ops`) and its parameters. The
functions below are written from the layer definitions (docs/math), not from matgrad's
code.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
rng = np.random.default_rng(20261124)


def real(m, n):
    return rng.standard_normal((m, n))


def cplx(m, n):
    return rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))


def covariance_pool(f, eps):
    return f.conj().T @ f / f.shape[0] + eps * jnp.eye(f.shape[1])


def max_outer_pool(f):
    return jnp.max(f[:, :, None] * f[:, None, :], axis=0)


def triu_vec(g):
    d = g.shape[0]
    rows, cols, w = [], [], []
    for j in range(d):
        for i in range(j + 1):
            rows.append(i)
            cols.append(j)
            w.append(1.0 if i == j else np.sqrt(2.0))
    return (g[np.array(rows), np.array(cols)] * np.array(w))[None, :]


def o2p_batch(batch, eps):
    def f(x):
        m = x.shape[0] // batch
        return jnp.concatenate([logm_sym(covariance_pool(x[b * m:(b + 1) * m], eps)) for b in range(batch)], axis=0)
    return f


def triu_rows(batch):
    def f(l):
        d = l.shape[1]
        return jnp.concatenate([triu_vec(l[b * d:(b + 1) * d]) for b in range(batch)], axis=0)
    return f


def power_normalize(z, h, eps):
    return jnp.sign(z) * ((jnp.abs(z) + eps) ** h - eps**h)


def logm_sym(g):
    lam, u = jnp.linalg.eigh(0.5 * (g + g.conj().T))
    return (u * jnp.log(lam)) @ u.conj().T


def o2p_descriptor(pool, eps, log, h, h_eps):
    def f(x):
        g = covariance_pool(x, eps) if pool == "average" else max_outer_pool(x) + eps * jnp.eye(x.shape[1])
        if log:
            g = logm_sym(g)
        v = triu_vec(g)
        return power_normalize(v, h, h_eps) if h else v

    return f


def ncut_gaussian(sigma, k, self_loops):
    def f(x):
        n = x.shape[0]
        d2 = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
        w = jnp.where(jnp.eye(n, dtype=bool), 1.0 if self_loops else 0.0, jnp.exp(-d2 / sigma**2))
        s = 1.0 / jnp.sqrt(jnp.sum(w, axis=1))
        lam, u = jnp.linalg.eigh(w * s[:, None] * s[None, :])
        uk = u[:, n - k:]
        return uk @ uk.T

    return f


def cayley(b):
    n = b.shape[0]
    a = 0.5 * (b - b.conj().T)
    return jnp.linalg.solve(jnp.eye(n) - a, jnp.eye(n) + a)


def expm_skew(b):
    return jax.scipy.linalg.expm(b - b.conj().T)


def householder_product(v):
    n, k = v.shape
    q = jnp.eye(n, dtype=v.dtype)
    for i in range(k):
        u = v[:, i:i + 1] / jnp.linalg.norm(v[:, i])
        q = q - 2.0 * (q @ u) @ u.conj().T
    return q


def diag_low_rank(d, u, v):
    return jnp.diag(d[:, 0]) + u @ v.conj().T


def spectral_normalize(m):
    return m / jnp.linalg.svd(m, compute_uv=False)[0]


# name, registry op, its parameters, function, inputs
CASES = [
    ("covariance_pool", "covariance_pool", {"eps": 0.1}, lambda f: covariance_pool(f, 0.1), [real(9, 3)]),
    ("covariance_pool_complex", "covariance_pool", {"eps": 0}, lambda f: covariance_pool(f, 0.0), [cplx(5, 2)]),
    ("max_outer_pool", "max_outer_pool", {}, max_outer_pool, [real(8, 4)]),
    ("triu_vec", "triu_vec", {}, triu_vec, [real(4, 4)]),
    ("triu_vec_complex", "triu_vec", {}, triu_vec, [cplx(3, 3)]),
    ("o2p_batch", "o2p_batch", {"batch": 3, "eps": 0.01}, o2p_batch(3, 0.01), [real(18, 3)]),
    ("o2p_batch_complex", "o2p_batch", {"batch": 2, "eps": 0.1}, o2p_batch(2, 0.1), [cplx(10, 2)]),
    ("triu_rows", "triu_rows", {"batch": 2}, triu_rows(2), [real(8, 4)]),
    ("triu_rows_complex", "triu_rows", {"batch": 3}, triu_rows(3), [cplx(6, 2)]),
    ("power_normalize", "power_normalize", {"h": 0.5, "eps": 0}, lambda z: power_normalize(z, 0.5, 0.0), [real(3, 4)]),
    ("power_normalize_eps", "power_normalize", {"h": 0.75, "eps": 0.01},
     lambda z: power_normalize(z, 0.75, 0.01), [real(2, 5)]),
    ("o2p_descriptor_average", "second_order_pooling", {"pool": "average", "eps": 0.01, "log": "yes", "h": 0.75, "h_eps": 0.001},
     o2p_descriptor("average", 0.01, True, 0.75, 0.001), [real(20, 3)]),
    ("o2p_descriptor_max", "second_order_pooling", {"pool": "max", "eps": 3.0, "log": "yes", "h": 0, "h_eps": 0.001},
     o2p_descriptor("max", 3.0, True, 0, 0.001), [real(10, 3)]),
    ("o2p_descriptor_nolog", "second_order_pooling", {"pool": "average", "eps": 0.01, "log": "no", "h": 0.5, "h_eps": 0.001},
     o2p_descriptor("average", 0.01, False, 0.5, 0.001), [real(7, 2)]),
    # distinct spectra only: JAX differentiates the eigenvectors, whose rule divides by
    # every eigenvalue gap (the tied cases are checked against finite differences instead)
    ("ncut_gaussian", "ncut_gaussian", {"sigma": 1.5, "k": 2, "self_loops": "yes"},
     ncut_gaussian(1.5, 2, True), [real(7, 3)]),
    ("ncut_gaussian_no_loops", "ncut_gaussian", {"sigma": 2.0, "k": 3, "self_loops": "no"},
     ncut_gaussian(2.0, 3, False), [real(9, 2)]),
    ("cayley", "cayley", {}, cayley, [real(4, 4)]),
    ("cayley_complex", "cayley", {}, cayley, [cplx(3, 3)]),
    ("expm_skew", "expm_skew", {}, expm_skew, [real(4, 4)]),
    ("expm_skew_complex", "expm_skew", {}, expm_skew, [cplx(3, 3)]),
    ("householder_product", "householder_product", {}, householder_product, [real(5, 3)]),
    ("householder_product_complex", "householder_product", {}, householder_product, [cplx(3, 2)]),
    ("diag_low_rank", "diag_low_rank", {}, diag_low_rank, [real(4, 1), real(4, 2), real(4, 2)]),
    ("diag_low_rank_complex", "diag_low_rank", {}, diag_low_rank, [cplx(3, 1), cplx(3, 2), cplx(3, 2)]),
    ("spectral_normalize", "spectral_normalize", {}, spectral_normalize, [real(4, 3)]),
    ("spectral_normalize_complex", "spectral_normalize", {}, spectral_normalize, [cplx(2, 3)]),
]


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


def run(cases):
    out = []
    for name, op, params, f, xs in cases:
        xs = [jnp.asarray(x) for x in xs]
        y = f(*xs)
        ybar = like(y)
        xdots = [like(x) for x in xs]

        def phi(*args):
            return jnp.real(jnp.sum(jnp.conj(ybar) * f(*args)))

        grads = jax.grad(phi, argnums=tuple(range(len(xs))))(*xs)
        grads = [np.conj(g) if np.iscomplexobj(g) else g for g in grads]
        _, ydot = jax.jvp(f, tuple(xs), tuple(jnp.asarray(d) for d in xdots))
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
    return out


if __name__ == "__main__":
    print(json.dumps({"generator": f"jax {jax.__version__}, numpy {np.__version__}, float64", "cases": run(CASES)}))
