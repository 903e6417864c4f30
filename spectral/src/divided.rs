//! Divided differences of scalar functions at eigenvalues, accurate at any gap.
//!
//! First order: `f[a, b] = (f(a) − f(b))/(a − b)`, `f[a, a] = f′(a)`.
//! Second order: `f[a, b, c] = (f[a, b] − f[b, c])/(a − c)`, `f[a, a, a] = f″(a)/2`.
//!
//! Evaluated naively, `f[a, b]` loses `ε(|f(a)| + |f(b)|)/|a − b|` to cancellation: all
//! digits at the ≈1e-15 gaps an eigensolver returns for a tie. Every difference here is
//! computed so that its absolute error is a few `ε·s`, where `s` is the larger of the
//! result and the derivative at the points (`|f′(a)|, |f′(b)|` for first order,
//! `|f″|/2` for second order), for any location, sign and gap — ties, near-ties,
//! clusters at 0 or at ±1e3:
//!
//! - the quotient `(f(a) − f(b))/(a − b)` is used when it is well conditioned,
//!   `|f(a)| + |f(b)| ≤ 4 |f(a) − f(b)|` (error ≤ ≈6ε relative);
//! - otherwise a form without cancellation: `log`: `log1p(t)/(a − b)`, `t = (a − b)/b`
//!   (`b` the larger point) or `log(a/b)/(a − b)`; `exp`: `e^{max}·(−expm1(−|a − b|))/|a − b|`;
//!   `sqrt`: `1/(√a + √b)`; `xᵖ` on one side of 0: `b^{p−1}·expm1(p·log(a/b))/((a − b)/b)`,
//!   with the sign `(−1)^{p+1}` for two negative points (integer p); two points on
//!   opposite sides of 0 have `|a − b| ≥ max(|a|, |b|)`, where the quotient is accurate;
//! - a user function ([`SymFn::Custom`]) has only `f` and `f′`: there the difference is
//!   the mean of `f′` over `[b, a]` (Hermite–Genocchi), by adaptive 8-point
//!   Gauss–Legendre quadrature, whichever of the two has the smaller error estimate.
//!
//! Second differences use the recursion when its error estimate
//! (`4ε(s_yz + s_xy)/(z − x)`, `s_ab` the scale of `f[a, b]`) is below `4ε·|f″|/2`, and otherwise
//! `f[x, y, z] = ∫₀¹ s·f′[y + s(x − y), y + s(z − y)] ds` (x ≤ y ≤ z) by adaptive
//! quadrature, with the first divided difference of `f′` computed as above (for the
//! built-in functions in closed form: `(1/x)[p, q] = −1/(pq)`, …). A user function without
//! `f″` has no second difference where the recursion's estimate exceeds 32ε relative (`None`).
//!
//! The bounds are measured against 150-digit references in `tests/data/golden_divided.json`
//! (script `tests/data/golden_divided.py`) by `tests/golden_divided.rs`; the derivation is in
//! `docs/math/divided_differences.md`.

use std::rc::Rc;

const EPS: f64 = f64::EPSILON;

/// 8-point Gauss–Legendre nodes on [−1, 1] (positive half) and their weights.
const GL8_X: [f64; 4] = [
    0.183_434_642_495_649_8,
    0.525_532_409_916_329,
    0.796_666_477_413_626_7,
    0.960_289_856_497_536_3,
];
const GL8_W: [f64; 4] = [
    0.362_683_783_378_362,
    0.313_706_645_877_887_3,
    0.222_381_034_453_374_5,
    0.101_228_536_290_376_3,
];

/// Mean of `g` over `[lo, hi]` by 8-point Gauss–Legendre.
fn gauss_mean(g: &dyn Fn(f64) -> f64, lo: f64, hi: f64) -> f64 {
    let (mid, half) = (0.5 * (lo + hi), 0.5 * (hi - lo));
    let mut s = 0.0;
    for k in 0..4 {
        s += GL8_W[k] * (g(mid - half * GL8_X[k]) + g(mid + half * GL8_X[k]));
    }
    0.5 * s
}

/// Mean of `g` over `[lo, hi]`, adaptive: each interval is compared with its two halves
/// and split until they agree to `tol` (absolute, on the mean) or `depth` runs out.
/// Returns the value and an error estimate.
fn adaptive_mean(g: &dyn Fn(f64) -> f64, lo: f64, hi: f64, tol: f64, depth: u32) -> (f64, f64) {
    let mid = 0.5 * (lo + hi);
    let whole = gauss_mean(g, lo, hi);
    let halves = 0.5 * (gauss_mean(g, lo, mid) + gauss_mean(g, mid, hi));
    let err = (whole - halves).abs();
    if err <= tol || depth == 0 || mid == lo || mid == hi {
        return (halves, err);
    }
    let (l, el) = adaptive_mean(g, lo, mid, tol, depth - 1);
    let (r, er) = adaptive_mean(g, mid, hi, tol, depth - 1);
    (0.5 * (l + r), 0.5 * (el + er))
}

/// Whether the plain quotient `(fa − fb)/(a − b)` is well conditioned.
fn quotient_ok(fa: f64, fb: f64) -> bool {
    fa.abs() + fb.abs() <= 4.0 * (fa - fb).abs()
}

/// `f[a, b]` for a function given only by `f` and `f′`: the quotient when it is well
/// conditioned, else the mean of `f′` over `[b, a]`, whichever has the smaller error
/// estimate.
fn generic_dd1(df: &dyn Fn(f64) -> f64, a: f64, b: f64, fa: f64, fb: f64) -> f64 {
    if a == b {
        return df(a);
    }
    let h = a - b;
    let q = (fa - fb) / h;
    if quotient_ok(fa, fb) {
        return q;
    }
    let scale = q.abs().max(df(a).abs()).max(df(b).abs());
    let err_q = EPS * ((fa.abs() + fb.abs()) / h.abs() + q.abs());
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let (g, err_g) = adaptive_mean(df, lo, hi, 2.0 * EPS * scale, 8);
    if err_g <= err_q && g.is_finite() {
        g
    } else {
        q
    }
}

/// `f[x, y, z]` (any order) from the first differences `dd1` of `f` and `d1`, the first
/// difference of `f′`; `f2` gives `f″` where known. Without `f″` only the recursion is
/// available, and it is returned only where its error estimate is within 32ε of the result.
fn generic_dd2(
    dd1: &dyn Fn(f64, f64) -> f64,
    d1: Option<&dyn Fn(f64, f64) -> f64>,
    df: &dyn Fn(f64) -> f64,
    f2: Option<&dyn Fn(f64) -> f64>,
    a: f64,
    b: f64,
    c: f64,
) -> Option<f64> {
    let mut v = [a, b, c];
    v.sort_by(f64::total_cmp);
    let [x, y, z] = v;
    if x == z {
        return f2.map(|s| 0.5 * s(x));
    }
    let (dyz, dxy) = (dd1(y, z), dd1(x, y));
    let w = z - x;
    let r = (dyz - dxy) / w;
    // each first difference is good to a few ε times its own scale
    let s_yz = dyz.abs().max(df(y).abs()).max(df(z).abs());
    let s_xy = dxy.abs().max(df(x).abs()).max(df(y).abs());
    let err_r = 4.0 * EPS * (s_yz + s_xy) / w + EPS * r.abs();
    let Some(f2) = f2 else {
        // no f″: the recursion is all there is; keep it while it is accurate
        return (err_r <= 32.0 * EPS * r.abs()).then_some(r);
    };
    let scale2 = r.abs().max(0.5 * f2(x).abs()).max(0.5 * f2(z).abs());
    if err_r <= 4.0 * EPS * scale2 {
        return Some(r);
    }
    let d1 = d1?;
    // f[x, y, z] = ∫₀¹ s·f′[y + s(x − y), y + s(z − y)] ds
    let integrand = |s: f64| s * d1(y + s * (x - y), y + s * (z - y));
    let (g, err_g) = adaptive_mean(&integrand, 0.0, 1.0, EPS * scale2, 8);
    Some(if err_g <= err_r && g.is_finite() {
        g
    } else {
        r
    })
}

/// `f[a, b]` of `xᵖ` for two distinct positive points.
fn pow_positive_dd1(p: f64, a: f64, b: f64) -> f64 {
    // b the larger: t = (a − b)/b ∈ (−1, 0)
    let (a, b) = if a < b { (a, b) } else { (b, a) };
    let t = (a - b) / b;
    let l = if t > -0.5 {
        t.ln_1p()
    } else {
        let r = a / b;
        if r > 0.0 && r.is_normal() {
            r.ln()
        } else {
            a.ln() - b.ln()
        }
    };
    let v = b.powf(p - 1.0) * (p * l).exp_m1() / t;
    if v.is_finite() {
        v
    } else {
        (a.powf(p) - b.powf(p)) / (a - b)
    }
}

/// `f[a, b]` of `xᵖ` for any two distinct points where `xᵖ` is defined.
fn pow_dd1(p: f64, a: f64, b: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        pow_positive_dd1(p, a, b)
    } else if a < 0.0 && b < 0.0 {
        // xᵖ = (−1)ᵖ |x|ᵖ for integer p, so f[a, b] = (−1)^{p+1} g[|a|, |b|]
        let g = pow_positive_dd1(p, -a, -b);
        if (p % 2.0).abs() == 1.0 {
            g
        } else {
            -g
        }
    } else {
        // opposite sides of 0 (or one point at 0): |a − b| ≥ max(|a|, |b|)
        (a.powf(p) - b.powf(p)) / (a - b)
    }
}

/// A scalar function with the derivatives the Daleckii–Krein rules need.
#[derive(Clone)]
pub enum SymFn {
    /// Natural logarithm (needs λ > 0).
    Log,
    /// Exponential.
    Exp,
    /// Square root (needs λ ≥ 0 for the value, λ > 0 for derivatives).
    Sqrt,
    /// `xᵖ` (needs λ > 0 unless p is a nonnegative integer).
    Pow(f64),
    /// A user function: `f`, `f′`, and optionally `f″` (needed for second order).
    Custom {
        /// Name used in errors.
        name: &'static str,
        /// The function.
        f: Rc<dyn Fn(f64) -> f64>,
        /// Its derivative.
        df: Rc<dyn Fn(f64) -> f64>,
        /// Its second derivative, if known.
        d2f: Option<Rc<dyn Fn(f64) -> f64>>,
    },
}

impl std::fmt::Debug for SymFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name())
    }
}

impl SymFn {
    /// The function's name.
    pub fn name(&self) -> &'static str {
        match self {
            SymFn::Log => "logm_sym",
            SymFn::Exp => "expm_sym",
            SymFn::Sqrt => "sqrtm_sym",
            SymFn::Pow(_) => "powm_sym",
            SymFn::Custom { name, .. } => name,
        }
    }

    /// `f(x)`.
    pub fn value(&self, x: f64) -> f64 {
        match self {
            SymFn::Log => x.ln(),
            SymFn::Exp => x.exp(),
            SymFn::Sqrt => x.max(0.0).sqrt(),
            SymFn::Pow(p) => x.powf(*p),
            SymFn::Custom { f, .. } => f(x),
        }
    }

    /// `f′(x)`.
    pub fn deriv(&self, x: f64) -> f64 {
        match self {
            SymFn::Log => 1.0 / x,
            SymFn::Exp => x.exp(),
            SymFn::Sqrt => 0.5 / x.sqrt(),
            SymFn::Pow(p) if *p == 0.0 => 0.0,
            SymFn::Pow(p) => p * x.powf(p - 1.0),
            SymFn::Custom { df, .. } => df(x),
        }
    }

    /// `f″(x)`, if known.
    pub fn second(&self, x: f64) -> Option<f64> {
        Some(match self {
            SymFn::Log => -1.0 / (x * x),
            SymFn::Exp => x.exp(),
            SymFn::Sqrt => -0.25 / (x * x.sqrt()),
            SymFn::Pow(p) if *p == 0.0 || *p == 1.0 => 0.0,
            SymFn::Pow(p) => p * (p - 1.0) * x.powf(p - 2.0),
            SymFn::Custom { d2f, .. } => return d2f.as_ref().map(|g| g(x)),
        })
    }

    /// `f[a, b]` given `fa = f(a)`, `fb = f(b)` already computed (the Loewner matrix reuses
    /// them): the plain quotient where it is well conditioned, [`SymFn::dd1`] otherwise.
    pub fn dd1_with_values(&self, a: f64, b: f64, fa: f64, fb: f64) -> f64 {
        if a != b && quotient_ok(fa, fb) && !matches!(self, SymFn::Sqrt) {
            return (fa - fb) / (a - b);
        }
        self.dd1_careful(a, b, fa, fb)
    }

    /// `f[a, b]` without cancellation (see the module docs for the error bound).
    pub fn dd1(&self, a: f64, b: f64) -> f64 {
        self.dd1_with_values(a, b, self.value(a), self.value(b))
    }

    fn dd1_careful(&self, a: f64, b: f64, fa: f64, fb: f64) -> f64 {
        if a == b {
            return self.deriv(a);
        }
        match self {
            SymFn::Log => {
                let (a, b) = if a < b { (a, b) } else { (b, a) };
                let t = (a - b) / b;
                let l = if t > -0.5 {
                    t.ln_1p()
                } else {
                    let r = a / b;
                    if r.is_normal() {
                        r.ln()
                    } else {
                        a.ln() - b.ln()
                    }
                };
                l / (a - b)
            }
            SymFn::Exp => {
                let d = (a - b).abs();
                a.max(b).exp() * (-(-d).exp_m1()) / d
            }
            SymFn::Sqrt => 1.0 / (a.max(0.0).sqrt() + b.max(0.0).sqrt()),
            SymFn::Pow(p) => pow_dd1(*p, a, b),
            SymFn::Custom { df, .. } => generic_dd1(&**df, a, b, fa, fb),
        }
    }

    /// `f′[a, b]`, the first divided difference of the derivative (used by second
    /// differences); `None` for a user function without `f″`.
    fn deriv_dd1(&self, a: f64, b: f64) -> Option<f64> {
        Some(match self {
            SymFn::Log => -1.0 / (a * b),
            SymFn::Exp => SymFn::Exp.dd1(a, b),
            SymFn::Sqrt => {
                let (ra, rb) = (a.sqrt(), b.sqrt());
                -0.5 / (ra * rb * (ra + rb))
            }
            SymFn::Pow(p) if *p == 0.0 || *p == 1.0 => 0.0,
            SymFn::Pow(p) => p * SymFn::Pow(p - 1.0).dd1(a, b),
            SymFn::Custom { df, d2f, .. } => {
                let d2f = d2f.as_ref()?;
                generic_dd1(&**d2f, a, b, df(a), df(b))
            }
        })
    }

    /// `f[a, b, c]`; `None` when f″ is unknown and the recursion is inaccurate (close
    /// points).
    pub fn dd2(&self, a: f64, b: f64, c: f64) -> Option<f64> {
        let dd1 = |x: f64, y: f64| self.dd1(x, y);
        let d1 = |x: f64, y: f64| self.deriv_dd1(x, y).unwrap_or(f64::NAN);
        let df = |x: f64| self.deriv(x);
        let f2 = |x: f64| self.second(x).unwrap_or(f64::NAN);
        let has2 = self.second(a).is_some();
        generic_dd2(
            &dd1,
            has2.then_some(&d1 as &dyn Fn(f64, f64) -> f64),
            &df,
            has2.then_some(&f2 as &dyn Fn(f64) -> f64),
            a,
            b,
            c,
        )
    }
}

/// The divided differences a Daleckii–Krein rule needs, indexed by eigenvalue position.
pub trait DividedDifferences {
    /// Name of the op, for errors.
    fn op_name(&self) -> &'static str;
    /// `f[λᵢ, λⱼ]`.
    fn dd1(&self, lambda: &[f64], i: usize, j: usize) -> f64;
    /// `f[λᵢ, λₖ, λⱼ]`, or `None` when it is not available (no f″).
    fn dd2(&self, lambda: &[f64], i: usize, k: usize, j: usize) -> Option<f64>;
    /// Whether second differences are available everywhere (false for a user function
    /// given without f″).
    fn has_second(&self) -> bool {
        true
    }
    /// The whole first-order (Loewner) matrix, row-major n×n. The default calls `dd1`
    /// for each pair; implementations override it to reuse per-eigenvalue work.
    fn loewner(&self, lambda: &[f64]) -> Vec<f64> {
        let n = lambda.len();
        (0..n * n).map(|k| self.dd1(lambda, k / n, k % n)).collect()
    }
}

impl DividedDifferences for SymFn {
    fn op_name(&self) -> &'static str {
        self.name()
    }
    fn dd1(&self, lambda: &[f64], i: usize, j: usize) -> f64 {
        SymFn::dd1(self, lambda[i], lambda[j])
    }
    fn dd2(&self, lambda: &[f64], i: usize, k: usize, j: usize) -> Option<f64> {
        SymFn::dd2(self, lambda[i], lambda[k], lambda[j])
    }
    fn has_second(&self) -> bool {
        !matches!(self, SymFn::Custom { d2f: None, .. })
    }
    fn loewner(&self, lambda: &[f64]) -> Vec<f64> {
        let n = lambda.len();
        let fv: Vec<f64> = lambda.iter().map(|&x| self.value(x)).collect();
        let mut out = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let d = self.dd1_with_values(lambda[i], lambda[j], fv[i], fv[j]);
                out[i * n + j] = d;
                out[j * n + i] = d;
            }
        }
        out
    }
}

/// The indicator of a set of eigenvalue positions (the spectral projector's "function"):
/// `f(λᵢ) = 1` for kept positions, 0 otherwise. Its divided differences vanish inside
/// either block and need only the gaps across the cut, so ties inside a block are harmless.
#[derive(Clone, Debug)]
pub struct Indicator {
    /// `kept[i]` is true for the positions whose eigenvectors span the projector's range.
    pub kept: Vec<bool>,
}

impl DividedDifferences for Indicator {
    fn op_name(&self) -> &'static str {
        "eigh_projector"
    }
    fn dd1(&self, lambda: &[f64], i: usize, j: usize) -> f64 {
        let (si, sj) = (
            f64::from(u8::from(self.kept[i])),
            f64::from(u8::from(self.kept[j])),
        );
        if si == sj {
            0.0
        } else {
            (si - sj) / (lambda[i] - lambda[j])
        }
    }
    fn dd2(&self, lambda: &[f64], i: usize, k: usize, j: usize) -> Option<f64> {
        let s = |x: usize| f64::from(u8::from(self.kept[x]));
        let (a, b, c) = (self.kept[i], self.kept[k], self.kept[j]);
        if a == b && b == c {
            return Some(0.0);
        }
        // Two positions (p, q) on one side, r on the other:
        // f[p, q, r] = −(s_p − s_r) / ((λ_p − λ_r)(λ_q − λ_r)), exact, no cancellation.
        let (p, q, r) = if a == b {
            (i, k, j)
        } else if a == c {
            (i, j, k)
        } else {
            (k, j, i)
        };
        Some(-(s(p) - s(r)) / ((lambda[p] - lambda[r]) * (lambda[q] - lambda[r])))
    }
}

#[cfg(test)]
mod tests {
    use super::SymFn;

    /// Reference divided differences at near-ties from their Taylor series (exact to the
    /// digits shown; `tests/data/golden_divided.py` recomputes them in 50-digit mpmath):
    /// log[1, 1 + 1e-10] = 0.99999999995000000000333…,
    /// exp[1, 1 + 1e-10] = e·(1 + 5e-11 + …) = 2.7182818285949…,
    /// sqrt[1, 1 + 1e-10] = 0.4999999999875000000006…
    #[test]
    #[allow(clippy::excessive_precision)] // the digits as mpmath prints them
    fn near_tie_divided_differences_are_accurate() {
        let h: f64 = 1e-10;
        let cases = [
            (SymFn::Log, 0.999_999_999_950_000_000_003_3),
            (SymFn::Exp, std::f64::consts::E * (h.exp_m1() / h)),
            (SymFn::Sqrt, 0.499_999_999_987_500_000_000_6),
        ];
        for (f, want) in cases {
            let got = f.dd1(1.0 + h, 1.0);
            assert!(
                ((got - want) / want).abs() < 1e-14,
                "{f:?}: {got} vs {want}"
            );
        }
        let p = SymFn::Pow(2.5);
        // (a^p − b^p)/(a − b) → p·b^{p−1}(1 + (p−1)h/(2b) + …)
        let want = 2.5 * (1.0 + 1.5 * h / 2.0);
        assert!(((p.dd1(1.0 + h, 1.0) - want) / want).abs() < 1e-14);
    }

    #[test]
    fn loewner_matrix_matches_pairwise_differences() {
        use super::DividedDifferences;
        let lam = [-1e-10, 1e-10, 0.3, 0.3 + 1e-12, 2.0, 40.0];
        for f in [SymFn::Exp, SymFn::Pow(3.0)] {
            let w = f.loewner(&lam);
            for i in 0..lam.len() {
                for j in 0..lam.len() {
                    let d = f.dd1(lam[i], lam[j]);
                    assert!(
                        (w[i * 6 + j] - d).abs() <= 1e-15 * d.abs().max(1.0),
                        "{f:?} {i} {j}"
                    );
                }
            }
        }
        // exp across zero at a tiny gap: e^b·expm1(h)/h, not (e^a − e^b)/h
        assert!((SymFn::Exp.loewner(&lam)[1] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn second_differences_at_ties() {
        // log[a, a, a] = f″(a)/2 = −1/(2a²); log[1, 1, 2] = (f[1, 2] − f′(1))/(2 − 1) = ln 2 − 1
        assert!((SymFn::Log.dd2(2.0, 2.0, 2.0).unwrap() + 0.125).abs() < 1e-15);
        let got = SymFn::Log.dd2(1.0, 1.0, 2.0).unwrap();
        assert!((got - (2f64.ln() - 1.0)).abs() < 1e-15, "{got}");
        // without f″ there is no second difference at a tie
        let custom = SymFn::Custom {
            name: "cube",
            f: std::rc::Rc::new(|x: f64| x.powi(3)),
            df: std::rc::Rc::new(|x: f64| 3.0 * x * x),
            d2f: None,
        };
        assert!(custom.dd2(1.0, 1.0, 1.0).is_none());
        assert!(
            (custom.dd2(1.0, 2.0, 4.0).unwrap() - 7.0).abs() < 1e-14,
            "x³[a,b,c] = a + b + c"
        );
    }
}
