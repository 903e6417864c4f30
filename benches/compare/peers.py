"""PyTorch or JAX side of benches/compare/compare.py: the same workloads as
examples/timings.rs, median wall time of each (seconds) printed as JSON. One library and one
thread count per process (XLA reads its thread flags at import).

    python benches/compare/peers.py --lib torch|jax --threads N [--only SUBSTRING]
"""
import argparse
import json
import os
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--lib", choices=["torch", "jax"], required=True)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--only", default="")
args = ap.parse_args()
t = str(args.threads)
os.environ["OMP_NUM_THREADS"] = t
os.environ["MKL_NUM_THREADS"] = t
os.environ["OPENBLAS_NUM_THREADS"] = t
os.environ["XLA_FLAGS"] = (
    f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'} "
    f"intra_op_parallelism_threads={t}"
)

import numpy as np  # noqa: E402

rng = np.random.default_rng(0)


def median(f, reps):
    for _ in range(3):
        f()
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        ts.append(time.perf_counter() - s)
    return float(np.median(ts))


def spd(n):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.geomspace(0.5, 10.0, n)) @ q.T
    return 0.5 * (a + a.T)


def want(name):
    return args.only in name


res, compile_s = {}, {}
x0, w0, b0 = (rng.standard_normal((2, 2)) for _ in range(3))
eig_cases = {n: (spd(n), rng.standard_normal(n), rng.standard_normal((n, n))) for n in [4, 16, 64, 256, 512]}
svd_cases = {}
for m, n in [(64, 64), (256, 256), (512, 256)]:
    k = min(m, n)
    svd_cases[(m, n)] = (rng.standard_normal((m, n)), rng.standard_normal((m, k)), rng.standard_normal(k),
                         rng.standard_normal((n, k)))
o2p_f, o2p_g = rng.standard_normal((1024, 256)), rng.standard_normal((256, 256))
ob_f, ob_g = rng.standard_normal((64, 64, 32)), rng.standard_normal((64, 32, 32))
reps = lambda n: 5 if n >= 512 else 11 if n >= 256 else 101
# conv2d: 16 images of 8x32x32, 16 kernels 3x3, padding 1 (NCHW / OIHW)
cv_x, cv_k, cv_g = (rng.standard_normal((16, 8, 32, 32)), rng.standard_normal((16, 8, 3, 3)),
                    rng.standard_normal((16, 16, 32, 32)))
# DeepO2P training step (benches/common/deepo2p.rs): 64 patches of 64 descriptors x d, F_b = X_b W,
# triu(logm(F_b^T F_b/64 + 1e-3 I)) (off-diagonal x sqrt 2), linear classifier to 10 classes,
# mean softmax cross-entropy; gradients of W and V
DEEP_D = [4, 8, 32]
deep = {d: (rng.standard_normal((64, 64, d)), rng.standard_normal((d, d)),
            rng.standard_normal((d * (d + 1) // 2, 10))) for d in DEEP_D}
deep_labels = np.arange(64) % 10


def triu_colwise(d):
    """Upper-triangle indices column by column, (0,0), (0,1), (1,1), (0,2), ... as matgrad's
    triu_vec orders them."""
    r, c = np.triu_indices(d)
    order = np.lexsort((r, c))
    return r[order], c[order]

if args.lib == "torch":
    import torch

    torch.set_num_threads(args.threads)
    torch.set_default_dtype(torch.float64)

    def chain():
        w = torch.tensor(w0, requires_grad=True)
        x, b = torch.tensor(x0), torch.tensor(b0)
        for _ in range(100):
            x = (w @ x + b) * 0.5
        x.sum().backward()

    if want("chain_2x2_300ops"):
        res["chain_2x2_300ops"] = median(chain, 201)
    for n, (a, lb, ub) in eig_cases.items():
        if not want(f"eigh_fwd_bwd_{n} eigh_fwd_{n}"):
            continue

        def fb():
            x = torch.tensor(a, requires_grad=True)
            l, u = torch.linalg.eigh(x)
            torch.autograd.backward([l, u], [torch.tensor(lb), torch.tensor(ub)])

        res[f"eigh_fwd_bwd_{n}"] = median(fb, reps(n))
        res[f"eigh_fwd_{n}"] = median(lambda: torch.linalg.eigh(torch.tensor(a)), reps(n))
    for (m, n), (a, ub, sb, vb) in svd_cases.items():
        if not want(f"svd_fwd_bwd_{m}x{n} svd_fwd_{m}x{n}"):
            continue

        def fb():
            x = torch.tensor(a, requires_grad=True)
            u, s, vh = torch.linalg.svd(x, full_matrices=False)
            torch.autograd.backward([u, s, vh], [torch.tensor(ub), torch.tensor(sb), torch.tensor(vb).T])

        res[f"svd_fwd_bwd_{m}x{n}"] = median(fb, reps(m))
        res[f"svd_fwd_{m}x{n}"] = median(lambda: torch.linalg.svd(torch.tensor(a), full_matrices=False), reps(m))

    def o2p(f, eps=1e-3):
        c = f.transpose(-1, -2) @ f / f.shape[-2] + eps * torch.eye(f.shape[-1])
        l, u = torch.linalg.eigh(c)
        return (u * torch.log(l).unsqueeze(-2)) @ u.transpose(-1, -2)

    if want("o2p_fwd_bwd_1024x256"):
        def fb():
            f = torch.tensor(o2p_f, requires_grad=True)
            o2p(f).backward(torch.tensor(o2p_g))

        res["o2p_fwd_bwd_1024x256"] = median(fb, 11)
    if want("o2p_batch_fwd_bwd_64x64x32"):
        def fb():
            f = torch.tensor(ob_f, requires_grad=True)
            o2p(f).backward(torch.tensor(ob_g))

        res["o2p_batch_fwd_bwd_64x64x32"] = median(fb, 31)
    if want("conv2d_fwd_16x8x32x32_k16 conv2d_fwd_bwd_16x8x32x32_k16"):
        import torch.nn.functional as tf

        def fwd():
            tf.conv2d(torch.tensor(cv_x), torch.tensor(cv_k), padding=1)

        def fb():
            x, k = torch.tensor(cv_x, requires_grad=True), torch.tensor(cv_k, requires_grad=True)
            tf.conv2d(x, k, padding=1).backward(torch.tensor(cv_g))

        res["conv2d_fwd_16x8x32x32_k16"] = median(fwd, 31)
        res["conv2d_fwd_bwd_16x8x32x32_k16"] = median(fb, 31)
    for d, (xs, w0_, v0_) in deep.items():
        if not want(f"deepo2p_step_64x{d}"):
            continue
        r_, c_ = (torch.tensor(a) for a in triu_colwise(d))
        sc = torch.where(r_ == c_, 1.0, 2.0 ** 0.5)
        xt, lab = torch.tensor(xs), torch.tensor(deep_labels)

        def step(d=d, r_=r_, c_=c_, sc=sc, xt=xt, lab=lab, w0_=w0_, v0_=v0_):
            w, v = torch.tensor(w0_, requires_grad=True), torch.tensor(v0_, requires_grad=True)
            desc = o2p(xt @ w)[:, r_, c_] * sc
            torch.nn.functional.cross_entropy(desc @ v, lab).backward()

        res[f"deepo2p_step_64x{d}"] = median(step, 51)
    version = f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
else:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def timed(name, fn, argv, r):
        s = time.perf_counter()
        jax.block_until_ready(fn(*argv))
        compile_s[name] = time.perf_counter() - s
        res[name] = median(lambda: jax.block_until_ready(fn(*argv)), r)

    def jchain(w, x, b):
        for _ in range(100):
            x = (w @ x + b) * 0.5
        return x.sum()

    if want("chain_2x2_300ops"):
        timed("chain_2x2_300ops", jax.jit(jax.grad(jchain)), tuple(map(jnp.asarray, (w0, x0, b0))), 201)
    for n, (a, lb, ub) in eig_cases.items():
        if not want(f"eigh_fwd_bwd_{n} eigh_fwd_{n}"):
            continue
        lbj, ubj = jnp.asarray(lb), jnp.asarray(ub)

        def loss(x, lbj=lbj, ubj=ubj):
            l, u = jnp.linalg.eigh(x)
            return jnp.sum(l * lbj) + jnp.sum(u * ubj)

        timed(f"eigh_fwd_bwd_{n}", jax.jit(jax.grad(loss)), (jnp.asarray(a),), reps(n))
        timed(f"eigh_fwd_{n}", jax.jit(jnp.linalg.eigh), (jnp.asarray(a),), reps(n))
    for (m, n), (a, ub, sb, vb) in svd_cases.items():
        if not want(f"svd_fwd_bwd_{m}x{n} svd_fwd_{m}x{n}"):
            continue
        ubj, sbj, vbj = map(jnp.asarray, (ub, sb, vb))

        def loss(x, ubj=ubj, sbj=sbj, vbj=vbj):
            u, s, vh = jnp.linalg.svd(x, full_matrices=False)
            return jnp.sum(u * ubj) + jnp.sum(s * sbj) + jnp.sum(vh.T * vbj)

        timed(f"svd_fwd_bwd_{m}x{n}", jax.jit(jax.grad(loss)), (jnp.asarray(a),), reps(m))
        timed(f"svd_fwd_{m}x{n}", jax.jit(lambda x: jnp.linalg.svd(x, full_matrices=False)), (jnp.asarray(a),),
              reps(m))

    def o2p(f, eps=1e-3):
        c = jnp.swapaxes(f, -1, -2) @ f / f.shape[-2] + eps * jnp.eye(f.shape[-1])
        l, u = jnp.linalg.eigh(c)
        return (u * jnp.log(l)[..., None, :]) @ jnp.swapaxes(u, -1, -2)

    if want("o2p_fwd_bwd_1024x256"):
        g = jnp.asarray(o2p_g)
        timed("o2p_fwd_bwd_1024x256", jax.jit(jax.grad(lambda f: jnp.sum(o2p(f) * g))), (jnp.asarray(o2p_f),), 11)
    if want("o2p_batch_fwd_bwd_64x64x32"):
        gb = jnp.asarray(ob_g)
        timed("o2p_batch_fwd_bwd_64x64x32", jax.jit(jax.grad(lambda f: jnp.sum(o2p(f) * gb))),
              (jnp.asarray(ob_f),), 31)
    if want("conv2d_fwd_16x8x32x32_k16 conv2d_fwd_bwd_16x8x32x32_k16"):
        def conv(x, k):
            return jax.lax.conv_general_dilated(x, k, (1, 1), ((1, 1), (1, 1)))

        gj = jnp.asarray(cv_g)
        cargs = (jnp.asarray(cv_x), jnp.asarray(cv_k))
        timed("conv2d_fwd_16x8x32x32_k16", jax.jit(conv), cargs, 31)
        timed("conv2d_fwd_bwd_16x8x32x32_k16",
              jax.jit(jax.grad(lambda x, k: jnp.sum(conv(x, k) * gj), argnums=(0, 1))), cargs, 31)
    for d, (xs, w0_, v0_) in deep.items():
        if not want(f"deepo2p_step_64x{d}"):
            continue
        r_, c_ = triu_colwise(d)
        sc = jnp.where(jnp.asarray(r_ == c_), 1.0, 2.0 ** 0.5)
        xj = jnp.asarray(xs)

        def loss(w, v, r_=r_, c_=c_, sc=sc, xj=xj):
            desc = o2p(xj @ w)[:, r_, c_] * sc
            logp = jax.nn.log_softmax(desc @ v)
            return -jnp.mean(logp[jnp.arange(64), deep_labels])

        timed(f"deepo2p_step_64x{d}", jax.jit(jax.grad(loss, argnums=(0, 1))),
              (jnp.asarray(w0_), jnp.asarray(v0_)), 51)
    version = f"jax {jax.__version__}"

json.dump({"version": version, "times": res, "compile": compile_s}, sys.stdout)
