"""Reference gradient of <G, ncut_projector(F)> at ill-conditioned features (issue 7,
bug 5): two feature columns parallel to 1e-4 and 1e-6, so cond(Z) is about 1e4 and 1e6.
The projector Z (Z^T Z)^{-1} Z^T is evaluated in 80-digit arithmetic (where the Gram
matrix costs nothing), and the gradient by central differences with step 1e-30 — no
formula of matgrad's is used. The float64 inputs are written with repr.

Run: python3 -m venv .venv && .venv/bin/pip install mpmath numpy
     .venv/bin/python tests/data/golden_ncut_conditioning.py > tests/data/golden_ncut_conditioning.json
"""
import json
import numpy as np
from mpmath import mp, mpf, matrix

mp.dps = 80

def projector(F):
    n, d = F.rows, F.cols
    ones = matrix(n, 1)
    for i in range(n):
        ones[i] = 1
    deg = F * (F.T * ones)
    Z = matrix(n, d)
    for i in range(n):
        for j in range(d):
            Z[i, j] = F[i, j] / mp.sqrt(deg[i])
    return Z * (Z.T * Z) ** -1 * Z.T

def phi(F, G):
    P = projector(F)
    return sum(G[i, j] * P[i, j] for i in range(P.rows) for j in range(P.cols))

rng = np.random.default_rng(7)
cases = []
for tilt in [1e-4, 1e-6]:
    n, d = 7, 3
    F = rng.uniform(0.2, 1.0, size=(n, d))
    F[:, 1] = F[:, 0] * (1.0 + tilt * rng.uniform(-1, 1, size=n))
    G = rng.standard_normal((n, n))
    Fm = matrix([[mpf(float(x)) for x in row] for row in F])
    Gm = matrix([[mpf(float(x)) for x in row] for row in G])
    h = mpf("1e-30")
    grad = [[None] * d for _ in range(n)]
    for i in range(n):
        for j in range(d):
            Fp = Fm.copy(); Fp[i, j] += h
            Fm_ = Fm.copy(); Fm_[i, j] -= h
            grad[i][j] = float((phi(Fp, Gm) - phi(Fm_, Gm)) / (2 * h))
    cases.append({"tilt": tilt, "f": {"re": F.tolist()}, "g": {"re": G.tolist()},
                  "grad": {"re": grad}})
print(json.dumps(cases))
