//! Second-order pooling (O2P, Carreira et al. ECCV 2012; DeepO2P, Ionescu et al. ICCV 2015):
//! the pooling of local features `F` (m×d, one row per location) into a d×d second-order
//! statistic, the log-Euclidean map, the upper-triangle vectorisation and power
//! normalisation — each composed from engine ops, so gradients (and second derivatives)
//! come from the engine's rules.
//!
//! - average pooling `G = FᴴF/m + εI` ([`covariance_pool`]);
//! - max pooling `Gⱼₖ = maxᵢ Fᵢⱼ Fᵢₖ` ([`max_outer_pool`]): piecewise quadratic; its
//!   (sub)gradient is that of the selected location `i*(j,k)`,
//!   `∂Gⱼₖ/∂F_{i*,j} = F_{i*,k}`, `∂Gⱼₖ/∂F_{i*,k} = F_{i*,j}`, with the first maximiser taken
//!   at a tie (a one-sided derivative there, as for `max` everywhere);
//! - the log-Euclidean map `log G` is [`matgrad_spectral::logm_sym`] (Daleckii–Krein, exact at
//!   repeated eigenvalues of G);
//! - [`triu_vec`]: the upper triangle `(Gᵢⱼ)_{i≤j}` as a row, off-diagonal entries times √2 so
//!   that `‖triu_vec(G)‖ = ‖G‖_F` for symmetric G;
//! - [`power_normalize`]: `sign(z)((|z| + ε)ʰ − εʰ)` entrywise (`sign(z)|z|ʰ` at ε = 0, whose
//!   derivative at 0 is infinite for h < 1 — an error there, or use ε > 0).
//!
//! [`SecondOrderPooling`] chains them as a module. Derivation: docs/math/o2p.md.

use matgrad_engine::{Axis, DType, Error, Form, Result, Value, Var};
use matgrad_spectral::logm_sym;

use crate::train::{Bound, Module};

fn real_only(op: &'static str, x: &Var<'_>) -> Result<()> {
    if x.dtype() != DType::F64 {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
            hint: "pooling compares values; apply it to real features",
        });
    }
    Ok(())
}

/// Average second-order pooling `FᴴF/m + εI` of an m×d feature matrix (ε ≥ 0).
///
/// # Errors
/// `m = 0` (no locations) or a negative or non-finite ε.
pub fn covariance_pool(f: Var<'_>, eps: f64) -> Result<Var<'_>> {
    let m = f.shape().0;
    if m == 0 {
        return Err(Error::Empty {
            op: "covariance_pool",
            shape: f.shape(),
        });
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::InvalidArgument {
            op: "covariance_pool",
            message: format!("eps must be finite and ≥ 0, got {eps}"),
        });
    }
    f.matmul_forms(Form::Adjoint, f, Form::Plain)?
        .scale(1.0 / m as f64)?
        .add_identity(eps)
}

/// Max second-order pooling `Gⱼₖ = maxᵢ Fᵢⱼ Fᵢₖ` of a real m×d feature matrix (symmetric d×d).
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// # fn main() -> Result<(), matgrad_engine::Error> {
/// let tape = Tape::new();
/// let f = tape.leaf(Value::Real(faer::mat![[1.0, 2.0], [-3.0, 1.0]]))?;
/// let g = matgrad_layers::max_outer_pool(f)?.value();
/// // G₀₀ = max(1, 9) = 9, G₀₁ = max(2, −3) = 2, G₁₁ = max(4, 1) = 4
/// assert_eq!(g.as_real().unwrap()[(0, 1)], 2.0);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Complex features; `m = 0`.
pub fn max_outer_pool(f: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "max_outer_pool";
    real_only(OP, &f)?;
    let (m, d) = f.shape();
    if m == 0 {
        return Err(Error::Empty {
            op: OP,
            shape: (m, d),
        });
    }
    let fv = f.value();
    let fr = fv.as_real().expect("real");
    // the selected location of each entry (column-major over (j, k))
    let mut sel = faer::Mat::<f64>::zeros(d * d, m);
    for k in 0..d {
        for j in 0..d {
            let best = (0..m).fold(0, |b, i| {
                if fr[(i, j)] * fr[(i, k)] > fr[(b, j)] * fr[(b, k)] {
                    i
                } else {
                    b
                }
            });
            sel[(j + k * d, best)] = 1.0;
        }
    }
    let tape = f.tape();
    let h = tape.constant(Value::Real(sel))?.matmul(f)?; // row (j,k): F_{i*(j,k), :}
    let pick = |col: &dyn Fn(usize) -> usize| -> Result<Var<'_>> {
        let mask = faer::Mat::from_fn(d * d, d, |r, c| f64::from(u8::from(col(r) == c)));
        h.mul(tape.constant(Value::Real(mask))?)?.sum(Axis::Cols)
    };
    let a = pick(&|r| r % d)?; // F_{i*, j}
    let b = pick(&|r| r / d)?; // F_{i*, k}
    a.mul(b)?.reshape(d, d)
}

/// The upper triangle of a square matrix as a 1×(d(d+1)/2) row, column by column
/// (`G₀₀, G₀₁, G₁₁, G₀₂, …`), off-diagonal entries times √2.
///
/// # Errors
/// A non-square input.
pub fn triu_vec(g: Var<'_>) -> Result<Var<'_>> {
    let (d, n) = g.shape();
    if d != n {
        return Err(Error::NotSquare {
            op: "triu_vec",
            shape: (d, n),
        });
    }
    if d == 0 {
        return g.reshape(1, 0);
    }
    // column j's upper part G[0..=j, j], stacked: d slices and one concatenation, O(d²)
    // work (a selection-matrix product would be O(d⁴) and allocate d²·d(d+1)/2 entries)
    let parts: Vec<Var<'_>> = (0..d)
        .map(|j| g.slice(0..j + 1, j..j + 1))
        .collect::<std::result::Result<_, _>>()?;
    let stacked = Var::vcat(&parts)?;
    let mut scale = faer::Mat::<f64>::zeros(d * (d + 1) / 2, 1);
    let mut t = 0;
    for j in 0..d {
        for i in 0..=j {
            scale[(t, 0)] = if i == j {
                1.0
            } else {
                std::f64::consts::SQRT_2
            };
            t += 1;
        }
    }
    let scale = match g.dtype() {
        DType::F64 => Value::Real(scale),
        DType::C64 => Value::Complex(Value::Real(scale).to_complex()),
    };
    stacked.mul(g.tape().constant(scale)?)?.transpose()
}

/// `sign(z)((|z| + ε)ʰ − εʰ)` entrywise, for real z, `h > 0`, `ε ≥ 0`.
///
/// # Errors
/// Complex input; `h ≤ 0` or `ε < 0`. In the backward pass: an entry at 0 with `ε = 0` and
/// `h < 1`, where the derivative is infinite ([`Error::NotDifferentiable`]; use ε > 0).
pub fn power_normalize(z: Var<'_>, h: f64, eps: f64) -> Result<Var<'_>> {
    const OP: &str = "power_normalize";
    real_only(OP, &z)?;
    if !(h.is_finite() && h > 0.0 && eps.is_finite() && eps >= 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!("need h > 0 and eps ≥ 0, got h = {h}, eps = {eps}"),
        });
    }
    let zv = z.value();
    let zr = zv.as_real().expect("real");
    let (m, n) = zr.shape();
    let sign = z
        .tape()
        .constant(Value::Real(faer::Mat::from_fn(m, n, |i, j| {
            let v = zr[(i, j)];
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            }
        })))?;
    z.abs()?
        .add_scalar(eps)?
        .powf(h)?
        .add_scalar(-eps.powf(h))?
        .mul(sign)
        .map_err(|e| e.within(OP))
}

/// How the second-order statistic is pooled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// `FᴴF/m + εI`.
    Average,
    /// `maxᵢ fᵢfᵢᵀ + εI`.
    Max,
}

/// Second-order pooling as a module, per sample: local features `F` (m×d) ↦ pooled `G`
/// (+ εI) ↦ `log G` (optional, the log-Euclidean map) ↦ `triu_vec` (a 1×d(d+1)/2 row) ↦
/// power normalisation (optional).
#[derive(Clone, Copy, Debug)]
pub struct SecondOrderPooling {
    /// Average or max.
    pub pool: Pool,
    /// The ridge ε added to G.
    pub eps: f64,
    /// Apply `logm_sym` (O2P) or not (plain second-order pooling).
    pub log: bool,
    /// Power normalisation `(h, ε)`, if any.
    pub power: Option<(f64, f64)>,
}

impl SecondOrderPooling {
    /// The descriptor of one sample's features.
    ///
    /// # Errors
    /// As the steps.
    pub fn describe<'t>(&self, f: Var<'t>) -> Result<Var<'t>> {
        let g = match self.pool {
            Pool::Average => covariance_pool(f, self.eps)?,
            Pool::Max => max_outer_pool(f)?.add_identity(self.eps)?,
        };
        let g = if self.log { logm_sym(g.sym()?)? } else { g };
        let v = triu_vec(g)?;
        match self.power {
            Some((h, e)) => power_normalize(v, h, e),
            None => Ok(v),
        }
    }
}

impl Module for SecondOrderPooling {
    /// `x` is one sample's m×d features; the output a 1×d(d+1)/2 row.
    fn forward<'t>(&self, _: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>> {
        self.describe(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, real_matrix};
    use matgrad_engine::Tape;

    #[test]
    fn forward_closed_forms() {
        let t = Tape::new();
        let f = t
            .constant(Value::Real(faer::mat![
                [1.0, 2.0, 0.0],
                [-3.0, 1.0, 1.0],
                [0.5, -1.0, 2.0]
            ]))
            .unwrap();
        let g = max_outer_pool(f).unwrap().value();
        let g = g.as_real().unwrap();
        let fr = [[1.0, 2.0, 0.0], [-3.0, 1.0, 1.0], [0.5, -1.0, 2.0]];
        for j in 0..3 {
            for k in 0..3 {
                let want = (0..3)
                    .map(|i| fr[i][j] * fr[i][k])
                    .fold(f64::NEG_INFINITY, f64::max);
                assert_eq!(g[(j, k)], want);
            }
        }
        // ‖triu_vec(G)‖ = ‖G‖_F for symmetric G
        let s = t
            .constant(matgrad_engine::testing::symmetric_from_seed(
                &[1.0, 2.0, 3.0],
                1,
            ))
            .unwrap();
        let v = triu_vec(s).unwrap();
        assert_eq!(v.shape(), (1, 6));
        assert!((v.value().norm() - s.value().norm()).abs() < 1e-14);
        // power normalisation: sign(z)|z|^h at ε = 0
        let z = t
            .constant(Value::Real(faer::mat![[4.0, -9.0, 0.0]]))
            .unwrap();
        let p = power_normalize(z, 0.5, 0.0).unwrap().value();
        assert_eq!(p.as_real().unwrap()[(0, 1)], -3.0);
        assert_eq!(p.as_real().unwrap()[(0, 2)], 0.0);
    }

    #[test]
    fn rules() {
        let f = real_matrix(6, 3, 5);
        assert_rules(
            "max_outer_pool",
            |_, x| max_outer_pool(x[0]),
            std::slice::from_ref(&f),
        );
        assert_rules(
            "covariance_pool",
            |_, x| covariance_pool(x[0], 0.1),
            std::slice::from_ref(&f),
        );
        assert_rules("triu_vec", |_, x| triu_vec(x[0]), &[real_matrix(4, 4, 6)]);
        assert_rules(
            "power_normalize",
            |_, x| power_normalize(x[0], 0.75, 0.0),
            &[real_matrix(2, 5, 7)],
        );
        let o2p = SecondOrderPooling {
            pool: Pool::Average,
            eps: 1e-2,
            log: true,
            power: Some((0.75, 1e-3)),
        };
        assert_rules(
            "O2P descriptor",
            move |_, x| o2p.describe(x[0]),
            std::slice::from_ref(&f),
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let z = t.leaf(Value::Real(faer::mat![[0.0, 1.0]])).unwrap();
        let y = power_normalize(z, 0.5, 0.0)
            .unwrap()
            .sum(Axis::All)
            .unwrap();
        assert!(matches!(
            t.grad(y, &[z]),
            Err(Error::NotDifferentiable { .. })
        ));
        let c = t
            .leaf(matgrad_engine::testing::complex_matrix(2, 2, 1))
            .unwrap();
        assert!(matches!(
            max_outer_pool(c),
            Err(Error::UnsupportedDType { .. })
        ));
        assert!(matches!(
            power_normalize(z, -1.0, 0.0),
            Err(Error::InvalidArgument { .. })
        ));
        assert!(matches!(
            triu_vec(t.leaf(real_matrix(2, 3, 1)).unwrap()),
            Err(Error::NotSquare { .. })
        ));
        let e = t.leaf(Value::zeros(DType::F64, 0, 2)).unwrap();
        assert!(matches!(covariance_pool(e, 0.1), Err(Error::Empty { .. })));
    }
}
