"""Recomputes, in 50-digit arithmetic, the near-tie divided differences hard-coded in
spectral/src/divided.rs. Run: .venv/bin/pip install mpmath && .venv/bin/python tests/data/golden_divided.py"""
from mpmath import mp, mpf, log, exp, sqrt

mp.dps = 50
a, b = mpf(1) + mpf("1e-10"), mpf(1)
for name, f in [("log", log), ("exp", exp), ("sqrt", sqrt), ("pow2.5", lambda x: x ** mpf("2.5"))]:
    print(name, mp.nstr((f(a) - f(b)) / (a - b), 25))
