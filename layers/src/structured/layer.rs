//! [`StructuredLinear`]: `y = x (S(θ) + R) + b` for a batch x (rows are samples), with S one
//! of the structured maps and R a residual.

use matgrad_engine::{Tape, Value, Var};

use super::{cayley, diag_low_rank, expm_skew, householder_product, spectral_normalize};
use crate::error::Result;
use crate::train::{Bound, Init, Module, ParamId, ParamSet};

/// The structured part S(θ) of an n×n weight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Structure {
    /// S = M, unconstrained (Glorot-initialised): the baseline.
    Dense,
    /// S = cayley(B), orthogonal; B initialised N(0, 1/n).
    Cayley,
    /// S = exp(B − Bᵀ), orthogonal; B initialised N(0, 1/n).
    ExpSkew,
    /// S = H₁⋯H_k from k reflectors (columns of an n×k V initialised N(0, 1)).
    Householder {
        /// Number of reflectors k.
        reflectors: usize,
    },
    /// S = diag(d) + U Vᵀ; d initialised at 1, U and V at N(0, 0.1²/n).
    DiagLowRank {
        /// The rank r of U Vᵀ.
        rank: usize,
    },
    /// S = M/σ₁(M), M Glorot-initialised.
    SpectralNorm,
}

/// The residual R.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Residual {
    /// No residual: W = S.
    None,
    /// R = U Vᵀ of rank r, U initialised at zero (so W = S at initialisation) and V at
    /// N(0, 1/n).
    LowRank {
        /// The rank r.
        rank: usize,
    },
    /// R dense, initialised at zero, with the penalty `weight·‖R‖²_F` from
    /// [`StructuredLinear::penalty`] to add to the loss.
    Penalized {
        /// The penalty weight.
        weight: f64,
    },
}

/// `x ↦ x (S(θ) + R) + 1bᵀ` with an n×n weight.
#[derive(Clone, Debug)]
pub struct StructuredLinear {
    /// The structured part.
    pub structure: Structure,
    /// The residual.
    pub residual: Residual,
    /// The width n.
    pub n: usize,
    s: Vec<ParamId>,
    r: Vec<ParamId>,
    b: Option<ParamId>,
}

impl StructuredLinear {
    /// Adds the parameters `name.s*`, `name.r*` and (with `bias`) `name.b` to `ps`.
    ///
    /// # Errors
    /// Names taken; a zero width.
    pub fn new(
        ps: &mut ParamSet,
        name: &str,
        n: usize,
        structure: Structure,
        residual: Residual,
        bias: bool,
    ) -> Result<StructuredLinear> {
        if n == 0 {
            return Err(matgrad_engine::Error::InvalidArgument {
                op: "StructuredLinear",
                message: "the width n must be positive".into(),
            });
        }
        let nf = n as f64;
        let s = match structure {
            Structure::Dense | Structure::SpectralNorm => {
                vec![ps.add(&format!("{name}.s"), n, n, Init::GlorotUniform)?]
            }
            Structure::Cayley | Structure::ExpSkew => {
                vec![ps.add(&format!("{name}.s"), n, n, Init::Normal(nf.powf(-0.5)))?]
            }
            Structure::Householder { reflectors } => {
                vec![ps.add(&format!("{name}.s"), n, reflectors, Init::Normal(1.0))?]
            }
            Structure::DiagLowRank { rank } => vec![
                ps.add(&format!("{name}.s_d"), n, 1, Init::Constant(1.0))?,
                ps.add(
                    &format!("{name}.s_u"),
                    n,
                    rank,
                    Init::Normal(0.1 * nf.powf(-0.5)),
                )?,
                ps.add(
                    &format!("{name}.s_v"),
                    n,
                    rank,
                    Init::Normal(0.1 * nf.powf(-0.5)),
                )?,
            ],
        };
        let r = match residual {
            Residual::None => vec![],
            Residual::LowRank { rank } => vec![
                ps.add(&format!("{name}.r_u"), n, rank, Init::Zeros)?,
                ps.add(&format!("{name}.r_v"), n, rank, Init::Normal(nf.powf(-0.5)))?,
            ],
            Residual::Penalized { .. } => vec![ps.add(&format!("{name}.r"), n, n, Init::Zeros)?],
        };
        let b = if bias {
            Some(ps.add(&format!("{name}.b"), 1, n, Init::Zeros)?)
        } else {
            None
        };
        Ok(StructuredLinear {
            structure,
            residual,
            n,
            s,
            r,
            b,
        })
    }

    /// The structured part S and the residual R (None without one) on a tape.
    ///
    /// # Errors
    /// Errors of the structured map (a zero reflector, σ₁ = 0).
    pub fn weight<'t>(&self, p: &Bound<'t>) -> Result<(Var<'t>, Option<Var<'t>>)> {
        let s = match self.structure {
            Structure::Dense => p.get(self.s[0]),
            Structure::Cayley => cayley(p.get(self.s[0]))?,
            Structure::ExpSkew => expm_skew(p.get(self.s[0]))?,
            Structure::Householder { .. } => householder_product(p.get(self.s[0]))?,
            Structure::DiagLowRank { .. } => {
                diag_low_rank(p.get(self.s[0]), p.get(self.s[1]), p.get(self.s[2]))?
            }
            Structure::SpectralNorm => spectral_normalize(p.get(self.s[0]))?,
        };
        let r = match self.residual {
            Residual::None => None,
            Residual::LowRank { .. } => Some(p.get(self.r[0]).matmul_forms(
                matgrad_engine::Form::Plain,
                p.get(self.r[1]),
                matgrad_engine::Form::Adjoint,
            )?),
            Residual::Penalized { .. } => Some(p.get(self.r[0])),
        };
        Ok((s, r))
    }

    /// `weight·‖R‖²_F` for a penalised residual (to add to the loss), else None.
    ///
    /// # Errors
    /// None in practice.
    pub fn penalty<'t>(&self, p: &Bound<'t>) -> Result<Option<Var<'t>>> {
        match self.residual {
            Residual::Penalized { weight } => {
                let r = p.get(self.r[0]);
                Ok(Some(r.dot_real(r)?.scale(weight)?))
            }
            _ => Ok(None),
        }
    }

    /// `(‖S‖_F, ‖R‖_F)` at the current parameters (‖R‖ = 0 without a residual): how much
    /// of the layer the structure explains — the interpretability diagnostic.
    ///
    /// # Errors
    /// As [`StructuredLinear::weight`].
    pub fn norms(&self, ps: &ParamSet) -> Result<(f64, f64)> {
        let tape = Tape::new();
        let p = ps.bind_constant(&tape)?;
        let (s, r) = self.weight(&p)?;
        Ok((s.value().norm(), r.map_or(0.0, |r| r.value().norm())))
    }

    /// The dense weight `S + R` at the current parameters.
    ///
    /// # Errors
    /// As [`StructuredLinear::weight`].
    pub fn dense_weight(&self, ps: &ParamSet) -> Result<Value> {
        let tape = Tape::new();
        let p = ps.bind_constant(&tape)?;
        let (s, r) = self.weight(&p)?;
        Ok(match r {
            Some(r) => s.add(r)?.value(),
            None => s.value(),
        })
    }
}

impl Module for StructuredLinear {
    fn forward<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> Result<Var<'t>> {
        let (s, r) = self.weight(p)?;
        let w = match r {
            Some(r) => s.add(r)?,
            None => s,
        };
        let y = x.matmul(w)?;
        match self.b {
            Some(b) => {
                let (m, n) = y.shape();
                y.add(p.get(b).broadcast_to(m, n)?)
            }
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::real_matrix;
    use matgrad_engine::{Axis, DType, Form};

    const ALL: [Structure; 6] = [
        Structure::Dense,
        Structure::Cayley,
        Structure::ExpSkew,
        Structure::Householder { reflectors: 3 },
        Structure::DiagLowRank { rank: 2 },
        Structure::SpectralNorm,
    ];

    #[test]
    fn orthogonal_structures_are_orthogonal_and_residuals_start_at_zero() {
        for structure in ALL {
            for residual in [
                Residual::None,
                Residual::LowRank { rank: 2 },
                Residual::Penalized { weight: 0.1 },
            ] {
                let mut ps = ParamSet::new(1);
                let l = StructuredLinear::new(&mut ps, "l", 5, structure, residual, true).unwrap();
                let (s, r) = l.norms(&ps).unwrap();
                assert_eq!(r, 0.0, "{structure:?} {residual:?}");
                if matches!(
                    structure,
                    Structure::Cayley | Structure::ExpSkew | Structure::Householder { .. }
                ) {
                    assert!((s - 5f64.sqrt()).abs() < 1e-13, "{structure:?}: ‖S‖ = {s}");
                    let w = l.dense_weight(&ps).unwrap();
                    let t = Tape::new();
                    let w = t.constant(w).unwrap();
                    let wtw = w
                        .matmul_forms(Form::Adjoint, w, Form::Plain)
                        .unwrap()
                        .value();
                    assert!(wtw.rel_diff(&Value::identity(DType::F64, 5)).unwrap() < 1e-13);
                }
            }
        }
    }

    /// The layer's gradient in every parameter against finite differences of the loss
    /// (through the module, the residual and the penalty).
    #[test]
    fn gradients_match_finite_differences() {
        let x = real_matrix(4, 5, 9);
        for structure in ALL {
            for residual in [
                Residual::LowRank { rank: 2 },
                Residual::Penalized { weight: 0.3 },
            ] {
                let mut ps = ParamSet::new(2);
                let l = StructuredLinear::new(&mut ps, "l", 5, structure, residual, true).unwrap();
                // move the residual and bias off zero so every path is exercised
                let ids: Vec<ParamId> = ps
                    .iter()
                    .map(|(name, _)| name.to_string())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|name| ps.id(name).unwrap())
                    .collect();
                for (i, v) in ps.values().to_vec().into_iter().enumerate() {
                    let (m, n) = v.shape();
                    let bump = real_matrix(m, n, 100 + i as u64);
                    let t = Tape::new();
                    let nv = t
                        .constant(v)
                        .unwrap()
                        .add(t.constant(bump).unwrap().scale(0.1).unwrap())
                        .unwrap();
                    ps.set(ids[i], nv.value()).unwrap();
                }
                let loss = |ps: &ParamSet, tape: &Tape| -> f64 {
                    let p = ps.bind_constant(tape).unwrap();
                    let y = l.forward(&p, tape.constant(x.clone()).unwrap()).unwrap();
                    let mut v = y
                        .tanh()
                        .unwrap()
                        .sum(Axis::All)
                        .unwrap()
                        .value()
                        .scalar_real()
                        .unwrap();
                    if let Some(pen) = l.penalty(&p).unwrap() {
                        v += pen.value().scalar_real().unwrap();
                    }
                    v
                };
                let tape = Tape::new();
                let p = ps.bind(&tape).unwrap();
                let y = l.forward(&p, tape.constant(x.clone()).unwrap()).unwrap();
                let mut total = y.tanh().unwrap().sum(Axis::All).unwrap();
                if let Some(pen) = l.penalty(&p).unwrap() {
                    total = total.add(pen).unwrap();
                }
                let g = p.grad(total).unwrap();
                let h = 1e-6;
                for (i, gi) in g.iter().enumerate() {
                    let gi = gi.as_real().unwrap();
                    let base = ps.values()[i].as_real().unwrap().clone();
                    for (r, c) in [(0, 0), (base.nrows() - 1, base.ncols() - 1)] {
                        let mut plus = ps.clone();
                        let mut minus = ps.clone();
                        let mut bp = base.clone();
                        bp[(r, c)] += h;
                        plus.set(ids[i], Value::Real(bp)).unwrap();
                        let mut bm = base.clone();
                        bm[(r, c)] -= h;
                        minus.set(ids[i], Value::Real(bm)).unwrap();
                        let fd =
                            (loss(&plus, &Tape::new()) - loss(&minus, &Tape::new())) / (2.0 * h);
                        // central differences: O(h²)·f''' ≈ 1e-12 truncation plus 1e-16/h
                        // rounding ≈ 1e-10, relative to the scale of the gradient
                        assert!(
                            (fd - gi[(r, c)]).abs() < 1e-7 * (1.0 + fd.abs()),
                            "{structure:?} {residual:?} param {i} ({r},{c}): fd {fd} vs {}",
                            gi[(r, c)]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn zero_width_is_refused() {
        let mut ps = ParamSet::new(0);
        assert!(
            StructuredLinear::new(&mut ps, "l", 0, Structure::Cayley, Residual::None, false)
                .is_err()
        );
    }
}
