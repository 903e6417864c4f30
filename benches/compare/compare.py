"""matgrad vs PyTorch vs JAX, side by side on this machine: the table of issue 11.

Every workload of examples/timings.rs that the peers also have (a chain of 100 x (2x2
matmul + add + scale) forward + backward; eigh forward and forward + backward; thin SVD
forward and forward + backward with cotangents on U, S, V; O2P logm(F^T F/m + eps I)
forward + backward for F 1024x256 and for a batch of 64 blocks of 64x32; conv2d of 16
images 8x32x32 with 16 kernels 3x3 forward and forward + backward; a DeepO2P training step
on 64 patches at d = 4, 8, 32), plus matgrad's A·B·C forward + VJP against the same six
GEMMs in bare faer and conv2d against the same loops and GEMMs written by hand on faer.
float64, CPU.

For each thread count (1 and 2: RAYON_NUM_THREADS for matgrad, torch.set_num_threads and
OMP/MKL for PyTorch, XLA's intra-op flags for JAX; and every process pinned to that many
CPUs, because the flags alone do not bound every library: jitted JAX ran the 64 LAPACK
calls of a batched eigh on both cores with its one-thread flags), `--rounds` interleaved
rounds run
matgrad, PyTorch and JAX one after the other, each in a fresh process that reports the
median of its repetitions; the table gives the median over rounds and the min over rounds.
JAX is jitted, its compile time excluded from the timings and reported on its own. Peak
resident memory is measured for a process that runs only the O2P 1024x256 workload.

Run (from the repository root):
    python3 -m venv .venv && .venv/bin/pip install jax numpy torch
    cargo build --release --example timings
    .venv/bin/python benches/compare/compare.py [--rounds 3] [--threads 1 2] > table.md
The system allocator instead of mimalloc for matgrad:
    cargo build --release --example timings --features system-alloc
    cp target/release/examples/timings /tmp/timings-system-alloc
    .venv/bin/python benches/compare/compare.py --timings /tmp/timings-system-alloc
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMINGS = os.path.join(ROOT, "target", "release", "examples", "timings")
PEERS = os.path.join(ROOT, "benches", "compare", "peers.py")

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
ap.add_argument("--only", default="")
# another build of the timings example, e.g. one with `--features system-alloc` copied aside
ap.add_argument("--timings", default=TIMINGS)
args = ap.parse_args()
TIMINGS = args.timings


def env_for(threads):
    e = dict(os.environ)
    e["RAYON_NUM_THREADS"] = str(threads)
    return e


CPUS = sorted(os.sched_getaffinity(0))


def pin(threads):
    """A `preexec_fn` that binds the child to the first `threads` CPUs this process may use."""
    cpus = set(CPUS[:threads])
    return lambda: os.sched_setaffinity(0, cpus)


def run(cmd, threads):
    """Runs one process on `threads` CPUs; returns its stdout as JSON."""
    p = subprocess.run(cmd, capture_output=True, env=env_for(threads), text=True, preexec_fn=pin(threads))
    if p.returncode != 0:
        sys.exit(f"{cmd} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def peak_rss(cmd, threads):
    """Peak resident memory (MiB) of a child process, via wait4."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env_for(threads),
                         preexec_fn=pin(threads))
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{cmd} failed: {p.stderr.read().decode()}")
    return ru.ru_maxrss / 1024


def matgrad_cmd(only):
    return [TIMINGS] + ([only] if only else [])


def peer_cmd(lib, threads, only):
    return [sys.executable, PEERS, "--lib", lib, "--threads", str(threads)] + (["--only", only] if only else [])


if not os.path.exists(TIMINGS):
    subprocess.run(["cargo", "build", "--release", "--example", "timings"], cwd=ROOT, check=True)

print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
      f"`{' '.join(['benches/compare/compare.py'] + sys.argv[1:])}`\n")
for threads in args.threads:
    times = {"matgrad": {}, "torch": {}, "jax": {}}
    compile_s, versions = {}, {}
    for r in range(args.rounds):
        mg = run(matgrad_cmd(args.only), threads)
        for k, v in mg.items():
            times["matgrad"].setdefault(k, []).append(v)
        for lib in ["torch", "jax"]:
            out = run(peer_cmd(lib, threads, args.only), threads)
            versions[lib] = out["version"]
            for k, v in out["times"].items():
                times[lib].setdefault(k, []).append(v)
            if lib == "jax":
                for k, v in out["compile"].items():
                    compile_s.setdefault(k, []).append(v)
        print(f"round {r + 1}/{args.rounds} at {threads} thread(s) done", file=sys.stderr)
    print(f"## {threads} thread{'s' if threads > 1 else ''}\n")
    print(f"{versions.get('torch', '')}, {versions.get('jax', '')}; every process pinned to CPU(s) "
          f"{','.join(map(str, CPUS[:threads]))}; {args.rounds} interleaved rounds; "
          "median over rounds (min in brackets); ratio = peer median / matgrad median (> 1: matgrad faster)\n")
    print("| workload | matgrad | PyTorch | JAX jit | PyTorch / matgrad | JAX / matgrad | JAX compile |")
    print("|---|---|---|---|---|---|---|")

    def cell(xs):
        if not xs:
            return "-"
        med, lo = statistics.median(xs), min(xs)
        unit, f = ("ms", 1e3) if med >= 1e-3 else ("µs", 1e6)
        return f"{med * f:.3g} {unit} ({lo * f:.3g})"

    for k, xs in times["matgrad"].items():
        if k.startswith("abc_bare") or "per_patch" in k or "by_hand" in k:
            continue
        m = statistics.median(xs)
        pt, jx = times["torch"].get(k, []), times["jax"].get(k, [])
        ratio = lambda ys: f"{statistics.median(ys) / m:.2f}×" if ys else "-"
        jc = f"{statistics.median(compile_s[k]):.2f} s" if k in compile_s else "-"
        name = k
        if k.startswith("abc_fwd_vjp"):
            bare = times["matgrad"].get(k.replace("abc_fwd_vjp", "abc_bare_faer"), [])
            name = f"{k} (bare faer: {cell(bare)}, matgrad / faer {m / statistics.median(bare):.2f}×)"
        if k.startswith("conv2d_fwd"):
            hk = "conv2d_by_hand_fwd_bwd" if "_bwd_" in k else "conv2d_by_hand_fwd"
            hand = times["matgrad"].get(hk, [])
            if hand:
                name = f"{k} (by hand on faer: {cell(hand)})"
        if k.startswith("deepo2p_step_64x"):
            per = times["matgrad"].get(k.replace("deepo2p_step_", "deepo2p_step_per_patch_"), [])
            if per:
                name = f"{k} (a node per patch: {cell(per)})"
        print(f"| {name} | {cell(xs)} | {cell(pt)} | {cell(jx)} | {ratio(pt)} | {ratio(jx)} | {jc} |")
    # backward-alone estimates (forward + backward minus forward, medians)
    lines = []
    for k in times["matgrad"]:
        if k.startswith("svd_fwd_bwd_") or k.startswith("eigh_fwd_bwd_"):
            fk = k.replace("_fwd_bwd_", "_fwd_")
            for lib in ["matgrad", "torch", "jax"]:
                fb, f = times[lib].get(k), times[lib].get(fk)
                if fb and f:
                    b = statistics.median(fb) - statistics.median(f)
                    lines.append((k.replace("_fwd_bwd", ""), lib, b / statistics.median(f)))
    if lines:
        print("\nBackward alone / forward (medians of forward + backward minus forward):\n")
        print("| decomposition | matgrad | PyTorch | JAX |")
        print("|---|---|---|---|")
        keys = sorted({k for k, _, _ in lines}, key=lambda s: (s.split("_")[0], int(s.split("_")[-1].split("x")[0])))
        for key in keys:
            row = {lib: f"{r:.2f}" for k, lib, r in lines if k == key}
            print(f"| {key} | {row.get('matgrad', '-')} | {row.get('torch', '-')} | {row.get('jax', '-')} |")
    print()
if not args.only or "o2p_fwd_bwd_1024x256" in args.only:
    print("## Peak resident memory, a process running only O2P 1024×256 forward + backward (1 thread)\n")
    print("| matgrad | PyTorch | JAX |")
    print("|---|---|---|")
    mem = [peak_rss(matgrad_cmd("o2p_fwd_bwd_1024x256"), 1)] + [
        peak_rss(peer_cmd(lib, 1, "o2p_fwd_bwd_1024x256"), 1) for lib in ["torch", "jax"]]
    print(" | ".join(f"{m:.0f} MiB" for m in mem).join(["| ", " |"]))
