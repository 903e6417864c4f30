"""150-digit reference divided differences for spectral/src/divided.rs.

f[a, b] and f[a, b, c] for log, exp, sqrt, powers (integer and not, negative points
included) and two user functions (exp and sin given as f, f', f''), at ties, near-ties
from 1e-15 to 1e-2, clusters around 0 and at +-1e3, and well-separated points. The points
are float64 numbers (written with repr, so Rust reads back the same doubles); the
references are exact divided differences of those doubles in 150-digit arithmetic, with
the derivative scales the error bound is stated against.

Run: python3 -m venv .venv && .venv/bin/pip install mpmath
     .venv/bin/python tests/data/golden_divided.py > tests/data/golden_divided.json
"""
import json
from mpmath import mp, mpf, log, exp, sqrt, sin, cos

# 150 digits: second differences at spreads of 1e-24 lose 2×24 digits to cancellation
mp.dps = 150

def powf(p):
    p = mpf(p)
    return (lambda x: x ** p, lambda x: p * x ** (p - 1) if p != 0 else mpf(0),
            lambda x: p * (p - 1) * x ** (p - 2) if p not in (0, 1) else mpf(0),
            lambda x: p * (p - 1) * (p - 2) * x ** (p - 3) if p not in (0, 1, 2) else mpf(0))

FUNCS = {
    # name: (f, f', f'', f''', domain)  domain: "pos" (x > 0) or "all"
    "log": (log, lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3, "pos"),
    "exp": (exp, exp, exp, exp, "all"),
    "sqrt": (sqrt, lambda x: 1 / (2 * sqrt(x)), lambda x: -1 / (4 * x * sqrt(x)),
             lambda x: 3 / (8 * x**2 * sqrt(x)), "pos"),
    "pow2": powf(2) + ("all",),
    "pow3": powf(3) + ("all",),
    "pow-1": powf(-1) + ("pos",),
    "pow0.5": powf("0.5") + ("pos",),
    "pow2.5": powf("2.5") + ("pos",),
    "pow-0.5": powf("-0.5") + ("pos",),
    "custom_exp": (exp, exp, exp, exp, "all"),
    "custom_sin": (sin, cos, lambda x: -sin(x), lambda x: -cos(x), "all"),
}

GAPS = [1e-15, 1e-13, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 0.5, 3.0]

def locations(name, domain):
    if domain == "pos":
        return [1e-12, 1e-3, 0.7, 1.0, 3.0, 1e3, 1e6]
    big = 30.0 if "exp" in name else 1e3
    return [-big, -3.0, -1.0, -5e-10, 0.0, 5e-13, 1.0, 3.0, big]

def ok(x, domain):
    return x > 0 if domain == "pos" else True

def dd1(f, df, a, b):
    a, b = mpf(a), mpf(b)
    return df(a) if a == b else (f(a) - f(b)) / (a - b)

def dd2(f, df, d2f, a, b, c):
    xs = sorted([mpf(a), mpf(b), mpf(c)])
    x, y, z = xs
    if x == z:
        return d2f(x) / 2
    if x == y:
        return (dd1(f, df, y, z) - df(x)) / (z - x)
    if y == z:
        return (df(z) - dd1(f, df, x, y)) / (z - x)
    return (dd1(f, df, y, z) - dd1(f, df, x, y)) / (z - x)

out = {"first": [], "second": []}
for name, (f, df, d2f, d3f, domain) in FUNCS.items():
    for a in locations(name, domain):
        scale = max(1.0, abs(a))
        pairs = [(a, a)]
        for g in GAPS:
            for b in (a + g * scale, a - g * scale):
                if ok(b, domain):
                    pairs.append((a, b))
        if a == 0.0:
            for g in GAPS:
                pairs.append((-g * 1e-9, g * 1e-9))
        for (x, y) in pairs:
            if not ok(x, domain) or not ok(y, domain):
                continue
            ref = dd1(f, df, x, y)
            s = max(abs(ref), abs(df(mpf(x))), abs(df(mpf(y))))
            nxt = max(abs(x), abs(y)) * max(abs(d2f(mpf(x))), abs(d2f(mpf(y))))
            out["first"].append({"f": name, "a": repr(x), "b": repr(y),
                                 "ref": mp.nstr(ref, 30), "scale": mp.nstr(s, 10),
                                 "next": mp.nstr(nxt, 10)})
        triples = [(a, a, a)]
        for g in GAPS:
            for t in [(a, a, a + g * scale), (a, a + g * scale, a + 2 * g * scale),
                      (a - g * scale, a, a + 0.5 * g * scale)]:
                if all(ok(v, domain) for v in t):
                    triples.append(t)
        if a == 0.0:
            for g in GAPS:
                triples.append((-g * 1e-9, 0.0, 2 * g * 1e-9))
        for t in triples:
            ref = dd2(f, df, d2f, *t)
            s = max([abs(ref)] + [abs(d2f(mpf(v))) / 2 for v in t])
            nxt = max(abs(v) for v in t) * max(abs(d3f(mpf(v))) for v in t) / 2
            out["second"].append({"f": name, "x": [repr(v) for v in t],
                                  "ref": mp.nstr(ref, 30), "scale": mp.nstr(s, 10),
                                  "next": mp.nstr(nxt, 10)})

print(json.dumps(out, indent=0))
