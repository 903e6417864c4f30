"""Reference results of scipy.optimize.direct(locally_biased=True) — Gablonsky's DIRECT-L —
on standard test functions, for matgrad's `direct_l` (tests/golden_direct.rs).

Run:  python3 -m venv .venv && .venv/bin/pip install scipy numpy
      .venv/bin/python tests/data/golden_direct.py > tests/data/golden_direct.json

Each case: the function's name (tests/golden_direct.rs defines the same functions), bounds,
options, and two results (best point, value, evaluation count, iteration count, status):
- "scipy": `scipy.optimize.direct(..., locally_biased=True)` as users call it;
- "gablonsky": the same compiled code run with its log file on (`_direct(..., disp=True)`,
  output discarded). scipy's copy of Gablonsky's code commented out a log message and left
  `if (logfile) goto L60;` in DIRChoose, so only with a log file does it reject a candidate
  whose rate-constant bounds cross (K_low > K_high) — Gablonsky's rule, which NLopt keeps.
  matgrad's `Selection::Gablonsky` must match this one, `Selection::ScipyQuiet` the first.
"""
import os
import sys
import json

import numpy as np
import scipy
from scipy.optimize import direct
from scipy.optimize._direct import direct as _direct  # the compiled routine behind direct()


def sphere_shifted(x):
    return float(np.sum((x - 0.3) ** 2))


def branin(x):
    a, b, c, r, s, t = 1.0, 5.1 / (4 * np.pi**2), 5 / np.pi, 6.0, 10.0, 1 / (8 * np.pi)
    return a * (x[1] - b * x[0] ** 2 + c * x[0] - r) ** 2 + s * (1 - t) * np.cos(x[0]) + s


def six_hump_camel(x):
    a, b = x
    return (4 - 2.1 * a**2 + a**4 / 3) * a**2 + a * b + (-4 + 4 * b**2) * b**2


def goldstein_price(x):
    a, b = x
    p = 1 + (a + b + 1) ** 2 * (19 - 14 * a + 3 * a**2 - 14 * b + 6 * a * b + 3 * b**2)
    q = 30 + (2 * a - 3 * b) ** 2 * (18 - 32 * a + 12 * a**2 + 48 * b - 36 * a * b + 27 * b**2)
    return p * q


def rosenbrock(x):
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def styblinski_tang(x):
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


def rastrigin(x):
    return float(10 * len(x) + np.sum(x**2 - 10 * np.cos(2 * np.pi * x)))


HART3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
HART3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
HART_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann3(x):
    return float(-np.sum(HART_ALPHA * np.exp(-np.sum(HART3_A * (x - HART3_P) ** 2, axis=1))))


SHEKEL_A = np.array([[4.0] * 4, [1.0] * 4, [8.0] * 4, [6.0] * 4, [3.0, 7.0, 3.0, 7.0]])
SHEKEL_C = np.array([0.1, 0.2, 0.2, 0.4, 0.4])


def shekel5(x):
    return float(-np.sum(1.0 / (np.sum((x - SHEKEL_A) ** 2, axis=1) + SHEKEL_C)))


FUNCS = {f.__name__: f for f in [sphere_shifted, branin, six_hump_camel, goldstein_price, rosenbrock,
                                  styblinski_tang, rastrigin, hartmann3, shekel5]}

# name, function, lower, upper, options
CASES = [
    ("sphere_3d_200", "sphere_shifted", [-1.0] * 3, [1.0] * 3, {"maxfun": 200}),
    ("branin_default", "branin", [-5.0, 0.0], [10.0, 15.0], {}),
    ("branin_100", "branin", [-5.0, 0.0], [10.0, 15.0], {"maxfun": 100}),
    ("camel_300", "six_hump_camel", [-3.0, -2.0], [3.0, 2.0], {"maxfun": 300}),
    ("goldstein_price_500", "goldstein_price", [-2.0, -2.0], [2.0, 2.0], {"maxfun": 500}),
    ("rosenbrock_2d_1000", "rosenbrock", [-2.0, -2.0], [2.0, 2.0], {"maxfun": 1000}),
    ("styblinski_tang_default", "styblinski_tang", [-4.0, -4.0], [4.0, 4.0], {}),
    ("styblinski_tang_len", "styblinski_tang", [-4.0, -4.0], [4.0, 4.0], {"len_tol": 1e-3}),
    ("rastrigin_2d_800", "rastrigin", [-5.12, -5.12], [5.12, 5.12], {"maxfun": 800}),
    ("hartmann3_default", "hartmann3", [0.0] * 3, [1.0] * 3, {}),
    ("shekel5_1000", "shekel5", [0.0] * 4, [10.0] * 4, {"maxfun": 1000}),
    ("shekel5_eps", "shekel5", [0.0] * 4, [10.0] * 4, {"maxfun": 2000, "eps": 1e-2}),
    ("branin_fmin", "branin", [-5.0, 0.0], [10.0, 15.0], {"f_min": 0.39788735772973816, "f_min_rtol": 1e-4}),
    ("camel_maxiter", "six_hump_camel", [-3.0, -2.0], [3.0, 2.0], {"maxiter": 7}),
]


def raw(fname, lo, hi, opts, disp):
    """scipy's compiled DIRECT with the public defaults; disp=True writes its log to fd 1."""
    f = FUNCS[fname]
    args = (lambda x: f(np.asarray(x)), np.array(lo), np.array(hi), (), disp, opts.get("eps", 1e-4),
            opts.get("maxfun", 1000 * len(lo)), opts.get("maxiter", 1000), True,
            opts.get("f_min", -np.inf), opts.get("f_min_rtol", 1e-4), opts.get("vol_tol", 1e-16),
            opts.get("len_tol", 1e-6), None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        x, fun, status, nfev, nit = _direct(*args)
    finally:
        os.dup2(saved, 1)
        os.close(devnull)
        os.close(saved)
    return {"x": [float(v) for v in x], "fun": float(fun), "nfev": int(nfev), "nit": int(nit), "status": int(status)}


def main():
    out = []
    for name, fname, lo, hi, opts in CASES:
        r = direct(FUNCS[fname], list(zip(lo, hi)), locally_biased=True, **opts)
        public = {"x": [float(v) for v in r.x], "fun": float(r.fun), "nfev": int(r.nfev),
                  "nit": int(r.nit), "status": int(r.status)}
        assert public == raw(fname, lo, hi, opts, False), name  # the wrapper adds nothing
        out.append({
            "name": name, "function": fname, "lower": lo, "upper": hi, "options": opts,
            "scipy": public, "gablonsky": raw(fname, lo, hi, opts, True),
        })
    print(json.dumps({"generator": f"scipy {scipy.__version__}, numpy {np.__version__}", "cases": out}, indent=1))


if __name__ == "__main__":
    main()
