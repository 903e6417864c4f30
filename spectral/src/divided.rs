//! Divided differences of scalar functions at eigenvalues, with cancellation guards.
//!
//! First order: `f[a, b] = (f(a) − f(b))/(a − b)`, `f[a, a] = f′(a)`.
//! Second order: `f[a, b, c] = (f[a, b] − f[b, c])/(a − c)`, `f[a, a, a] = f″(a)/2`.
//!
//! Evaluated naively, `f[a, b]` loses `ε|f|/|a − b|` to cancellation: 1e-6 relative at a
//! gap of 1e-10. The built-in functions use forms without cancellation:
//! `log: log1p(h/b)/h`, `exp: e^b expm1(h)/h`, `sqrt: 1/(√a + √b)`,
//! `xᵖ: b^{p−1} expm1(p log1p(h/b))/(h/b)` (h = a − b), accurate to a few ε at any gap,
//! ties included. A user function falls back to `f′((a+b)/2)` when
//! `|a − b| ≤ 1e-5·max(|a|, |b|)` (error ≈ f‴·h²/24, about 1e-11 relative at the switch).
//! Second differences use `f″(mean)/2` when the three points lie within `1e-5` relative
//! of each other and the recursive formula otherwise (error about 1e-10 relative at the
//! switch; they only enter second-order derivatives).

use std::rc::Rc;

/// Relative spread below which a generic first divided difference uses the derivative
/// at the midpoint.
pub const DD1_SWITCH: f64 = 1e-5;
/// Relative spread below which a second divided difference uses f″ at the mean.
pub const DD2_SWITCH: f64 = 1e-5;

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
            SymFn::Pow(p) => p * (p - 1.0) * x.powf(p - 2.0),
            SymFn::Custom { d2f, .. } => return d2f.as_ref().map(|g| g(x)),
        })
    }

    /// `f[a, b]` given `fa = f(a)`, `fb = f(b)` already computed: the same branches as
    /// [`SymFn::dd1`], with the precomputed values wherever `dd1` would form `f(a) − f(b)`.
    pub fn dd1_with_values(&self, a: f64, b: f64, fa: f64, fb: f64) -> f64 {
        let h = a - b;
        let direct = a != b
            && match self {
                SymFn::Log => (h / b).abs() >= 0.5,
                SymFn::Exp => h.abs() >= 1.0,
                SymFn::Sqrt => false,
                SymFn::Pow(_) => !(b > 0.0 && (h / b).abs() < 0.5),
                SymFn::Custom { .. } => h.abs() > DD1_SWITCH * a.abs().max(b.abs()),
            };
        if direct {
            (fa - fb) / h
        } else {
            self.dd1(a, b)
        }
    }

    /// `f[a, b]` without cancellation.
    pub fn dd1(&self, a: f64, b: f64) -> f64 {
        if a == b {
            return self.deriv(a);
        }
        let h = a - b;
        match self {
            SymFn::Log => {
                let t = h / b;
                if t.abs() < 0.5 {
                    t.ln_1p() / h
                } else {
                    (a.ln() - b.ln()) / h
                }
            }
            SymFn::Exp => {
                if h.abs() < 1.0 {
                    b.exp() * h.exp_m1() / h
                } else {
                    (a.exp() - b.exp()) / h
                }
            }
            SymFn::Sqrt => 1.0 / (a.max(0.0).sqrt() + b.max(0.0).sqrt()),
            SymFn::Pow(p) => {
                let t = h / b;
                if b > 0.0 && t.abs() < 0.5 {
                    b.powf(p - 1.0) * (p * t.ln_1p()).exp_m1() / t
                } else {
                    (a.powf(*p) - b.powf(*p)) / h
                }
            }
            SymFn::Custom { f, df, .. } => {
                if h.abs() <= DD1_SWITCH * a.abs().max(b.abs()) {
                    df(0.5 * (a + b))
                } else {
                    (f(a) - f(b)) / h
                }
            }
        }
    }

    /// `f[a, b, c]`; `None` when f″ is unknown and the points are close.
    pub fn dd2(&self, a: f64, b: f64, c: f64) -> Option<f64> {
        let mut v = [a, b, c];
        v.sort_by(f64::total_cmp);
        let [x, y, z] = v;
        let scale = x.abs().max(z.abs());
        if z - x <= DD2_SWITCH * scale {
            return self.second((x + y + z) / 3.0).map(|s| 0.5 * s);
        }
        Some((self.dd1(y, z) - self.dd1(x, y)) / (z - x))
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
