"""matgrad vs PyTorch vs JAX, side by side on this machine, as ratios.

Workloads (float64, CPU): a chain of 100 x (2x2 matmul + add + scale) forward+backward
(300 primitive ops); eigh forward, and forward+backward with cotangents on both outputs;
logm through the library's best route (matgrad: logm_sym; PyTorch/JAX: U log(L) U^T
through eigh) forward+backward, for n = 4, 64, 256. Median of repeated runs after warm-up.
JAX is timed jitted (compile time excluded and reported separately) and eager.

Run (from the repository root):
    python3 -m venv .venv && .venv/bin/pip install jax numpy torch
    .venv/bin/python benches/compare/compare.py > docs/results/compare.md
"""
import json
import subprocess
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

jax.config.update("jax_enable_x64", True)
torch.set_default_dtype(torch.float64)
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


res = {"torch": {}, "jax_jit": {}, "jax_compile": {}}

x0, w0, b0 = (rng.standard_normal((2, 2)) for _ in range(3))


def torch_chain():
    w = torch.tensor(w0, requires_grad=True)
    x, b = torch.tensor(x0), torch.tensor(b0)
    for _ in range(100):
        x = (w @ x + b) * 0.5
    x.sum().backward()


res["torch"]["chain_2x2_300ops"] = median(torch_chain, 201)


def jchain(w, x, b):
    for _ in range(100):
        x = (w @ x + b) * 0.5
    return x.sum()


g = jax.jit(jax.grad(jchain))
args = (jnp.asarray(w0), jnp.asarray(x0), jnp.asarray(b0))
s = time.perf_counter(); g(*args).block_until_ready(); res["jax_compile"]["chain_2x2_300ops"] = time.perf_counter() - s
res["jax_jit"]["chain_2x2_300ops"] = median(lambda: g(*args).block_until_ready(), 201)

for n in [4, 64, 256]:
    a = spd(n)
    lbar, ubar = rng.standard_normal(n), rng.standard_normal((n, n))
    reps = 11 if n >= 256 else 101

    def t_eigh_fb():
        x = torch.tensor(a, requires_grad=True)
        l, u = torch.linalg.eigh(x)
        torch.autograd.backward([l, u], [torch.tensor(lbar), torch.tensor(ubar)])

    def t_eigh_f():
        torch.linalg.eigh(torch.tensor(a))

    def t_logm_fb():
        x = torch.tensor(a, requires_grad=True)
        l, u = torch.linalg.eigh(x)
        y = (u * torch.log(l)) @ u.T
        y.backward(torch.tensor(ubar))

    res["torch"][f"eigh_fwd_bwd_{n}"] = median(t_eigh_fb, reps)
    res["torch"][f"eigh_fwd_{n}"] = median(t_eigh_f, reps)
    res["torch"][f"logm_fwd_bwd_{n}"] = median(t_logm_fb, reps)

    def jeigh_loss(x):
        l, u = jnp.linalg.eigh(x)
        return jnp.sum(l * lbar) + jnp.sum(u * ubar)

    def jlogm_loss(x):
        l, u = jnp.linalg.eigh(x)
        return jnp.sum(((u * jnp.log(l)) @ u.T) * ubar)

    ja = jnp.asarray(a)
    for name, fn in [(f"eigh_fwd_bwd_{n}", jax.jit(jax.grad(jeigh_loss))), (f"eigh_fwd_{n}", jax.jit(jnp.linalg.eigh)),
                     (f"logm_fwd_bwd_{n}", jax.jit(jax.grad(jlogm_loss)))]:
        s = time.perf_counter(); jax.block_until_ready(fn(ja)); res["jax_compile"][name] = time.perf_counter() - s
        res["jax_jit"][name] = median(lambda: jax.block_until_ready(fn(ja)), reps)

mg = json.loads(subprocess.run(["cargo", "run", "--release", "-q", "--example", "timings"], check=True,
                               capture_output=True, text=True).stdout)

print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), jax {jax.__version__}, numpy {np.__version__}\n")
print("| workload | matgrad | PyTorch | JAX jit | PyTorch / matgrad | JAX jit / matgrad | JAX compile |")
print("|---|---|---|---|---|---|---|")
for k, v in mg.items():
    pt, jj, jc = res["torch"].get(k), res["jax_jit"].get(k), res["jax_compile"].get(k)
    fmt = lambda x: f"{x * 1e6:.1f} µs" if x is not None else "-"
    ratio = lambda x: f"{x / v:.2f}×" if x is not None else "-"
    print(f"| {k} | {fmt(v)} | {fmt(pt)} | {fmt(jj)} | {ratio(pt)} | {ratio(jj)} | {fmt(jc)} |")
