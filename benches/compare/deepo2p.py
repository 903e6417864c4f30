"""DeepO2P training step, matgrad vs PyTorch vs JAX, side by side on this machine.

The step (the same in all three; matgrad's is benches/common/deepo2p.rs): a batch of 64
patches, each M = 64 local descriptors of dimension d; learned features F_b = X_b W
(W: d×d); descriptor triu_vec(logm(F_bᵀF_b/M + εI)) with √2 off-diagonal scaling; linear
classifier V (d(d+1)/2 × 10); mean softmax cross-entropy; gradients of W and V. float64,
CPU. PyTorch and JAX use their batched eigh (the natural way to write it there); matgrad
builds one node per patch. Median of repeated runs after warm-up; JAX jitted, compile time
reported separately. Rounds are interleaved (matgrad, torch, jax, matgrad, ...).

Run (from the repository root):
    python3 -m venv .venv && .venv/bin/pip install jax numpy torch
    cargo build --release --example timings
    .venv/bin/python benches/compare/deepo2p.py [--threads N]
"""
import argparse
import json
import os
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--rounds", type=int, default=3)
args = ap.parse_args()
os.environ["OMP_NUM_THREADS"] = str(args.threads)
os.environ["MKL_NUM_THREADS"] = str(args.threads)
os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'} intra_op_parallelism_threads={args.threads}"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
torch.set_num_threads(args.threads)
B, M, C, EPS = 64, 64, 10, 1e-3
DS = [4, 8, 32]
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


def data(d):
    x = rng.standard_normal((B, M, d))
    w = rng.standard_normal((d, d))
    v = rng.standard_normal((d * (d + 1) // 2, C))
    y = np.arange(B) % C
    iu = np.triu_indices(d)
    # column-by-column order as matgrad's triu_vec: (0,0), (0,1), (1,1), (0,2), ...
    order = np.lexsort((iu[0], iu[1]))
    rows, cols = iu[0][order], iu[1][order]
    scale = np.where(rows == cols, 1.0, np.sqrt(2.0))
    return x, w, v, y, rows, cols, scale


def torch_step(d):
    x, w, v, y, rows, cols, scale = data(d)
    x, y = torch.tensor(x), torch.tensor(y)
    rows, cols, scale = torch.tensor(rows), torch.tensor(cols), torch.tensor(scale)
    eye = torch.eye(d, dtype=torch.float64)

    def step():
        wt = torch.tensor(w, requires_grad=True)
        vt = torch.tensor(v, requires_grad=True)
        f = x @ wt
        c = f.transpose(1, 2) @ f / M + EPS * eye
        lam, u = torch.linalg.eigh(c)
        l = (u * torch.log(lam).unsqueeze(1)) @ u.transpose(1, 2)
        desc = l[:, rows, cols] * scale
        loss = torch.nn.functional.cross_entropy(desc @ vt, y)
        loss.backward()
        return wt.grad, vt.grad

    return step


def jax_step(d):
    x, w, v, y, rows, cols, scale = data(d)
    x, y, w, v = jnp.asarray(x), jnp.asarray(y), jnp.asarray(w), jnp.asarray(v)
    eye = jnp.eye(d)

    def loss(w, v):
        f = x @ w
        c = jnp.swapaxes(f, 1, 2) @ f / M + EPS * eye
        lam, u = jnp.linalg.eigh(c)
        l = (u * jnp.log(lam)[:, None, :]) @ jnp.swapaxes(u, 1, 2)
        desc = l[:, rows, cols] * scale
        z = desc @ v
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - z[jnp.arange(B), y])

    g = jax.jit(jax.grad(loss, argnums=(0, 1)))
    s = time.perf_counter()
    jax.block_until_ready(g(w, v))
    compile_s = time.perf_counter() - s
    return (lambda: jax.block_until_ready(g(w, v))), compile_s


def matgrad_times():
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    out = subprocess.run(["target/release/examples/timings"], check=True, capture_output=True,
                         text=True, env=env).stdout
    t = json.loads(out)
    return {d: t[f"deepo2p_step_64x{d}"] for d in DS}


res = {"matgrad": {d: [] for d in DS}, "torch": {d: [] for d in DS}, "jax": {d: [] for d in DS}}
steps_t = {d: torch_step(d) for d in DS}
steps_j = {d: jax_step(d) for d in DS}
for _ in range(args.rounds):
    for d, t in matgrad_times().items():
        res["matgrad"][d].append(t)
    for d in DS:
        res["torch"][d].append(median(steps_t[d], 21))
        res["jax"][d].append(median(steps_j[d][0], 21))

print(f"threads {args.threads}; torch {torch.__version__}, jax {jax.__version__}; "
      f"median of per-round medians over {args.rounds} interleaved rounds\n")
print("| d | matgrad | PyTorch | JAX jit | PyTorch / matgrad | JAX / matgrad | JAX compile |")
print("|---|---|---|---|---|---|---|")
for d in DS:
    m, p, j = (float(np.median(res[k][d])) for k in ("matgrad", "torch", "jax"))
    print(f"| {d} | {m * 1e3:.2f} ms | {p * 1e3:.2f} ms | {j * 1e3:.2f} ms | {p / m:.2f}× | {j / m:.2f}× "
          f"| {steps_j[d][1]:.2f} s |")
