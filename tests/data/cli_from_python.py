"""How to call matgrad's file contract from Python/numpy (an example, not run by the tests).

    cargo build --release
    python3 tests/data/cli_from_python.py

vjp: for each input, the gradient of sum(Gbar * f(X...)); jvp: the directional derivative.
Arrays are 2-D .npy, float64 or complex128, C or Fortran order.
"""
import os
import subprocess
import tempfile

import numpy as np

MATGRAD = os.environ.get("MATGRAD", "target/release/matgrad")


def vjp(op, inputs, cotangent, **params):
    with tempfile.TemporaryDirectory() as d:
        args = [MATGRAD, "vjp", op]
        outs = []
        for i, x in enumerate(inputs):
            np.save(f"{d}/x{i}.npy", x)
            args += ["--input", f"{d}/x{i}.npy"]
            outs.append(f"{d}/g{i}.npy")
        np.save(f"{d}/gbar.npy", cotangent)
        args += ["--cotangent", f"{d}/gbar.npy"]
        for o in outs:
            args += ["--output", o]
        for k, v in params.items():
            args += ["--param", f"{k}={v}"]
        subprocess.run(args, check=True)
        return [np.load(o) for o in outs]


def jvp(op, inputs, tangents, **params):
    with tempfile.TemporaryDirectory() as d:
        args = [MATGRAD, "jvp", op]
        for i, (x, t) in enumerate(zip(inputs, tangents)):
            np.save(f"{d}/x{i}.npy", x)
            np.save(f"{d}/t{i}.npy", t)
            args += ["--input", f"{d}/x{i}.npy", "--tangent", f"{d}/t{i}.npy"]
        args += ["--output", f"{d}/y.npy"]
        for k, v in params.items():
            args += ["--param", f"{k}={v}"]
        subprocess.run(args, check=True)
        return np.load(f"{d}/y.npy")


if __name__ == "__main__":
    # the gradient of <G, log A> at A = I is sym(G), where eigh-based autodiff gives NaN
    g = np.arange(9.0).reshape(3, 3)
    (ga,) = vjp("logm_sym", [np.eye(3)], g)
    print(np.allclose(ga, 0.5 * (g + g.T)))
    # projector onto the 2 lowest eigenvectors, with a tie inside the kept block
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    a = q @ np.diag([1.0, 1.0, 2.0]) @ q.T
    (gp,) = vjp("eigh_projector", [a], g, k=2, which="smallest")
    print(gp)
