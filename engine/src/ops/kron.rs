//! `kron`: the Kronecker product `C = A ⊗ B`, `C[i p + k, j q + l] = A[i, j] B[k, l]`
//! (A is m×n, B is p×q), and its two partial adjoints, the contractions
//! `kron_contract_left(G, B)[i, j] = Σ_{k,l} conj(B[k,l]) G[i p + k, j q + l]` (m×n) and
//! `kron_contract_right(G, A)[k, l] = Σ_{i,j} conj(A[i,j]) G[i p + k, j q + l]` (p×q).
//!
//! - tangent: `Ċ = Ȧ ⊗ B + A ⊗ Ḃ`;
//! - adjoint: `Ā = kron_contract_left(C̄, B)`, `B̄ = kron_contract_right(C̄, A)`.
//!
//! The contractions are bilinear; their own rules close over the same three maps:
//! for `H = kron_contract_left(G, B)`, `Ḣ = kcl(Ġ, B) + kcl(G, Ḃ)`, `Ḡ = H̄ ⊗ B`,
//! `B̄ = kron_contract_right(G, H̄)`; symmetrically for the right contraction. So every
//! rule is recordable and second order works. Derivation: docs/math/kron.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::ops::{add_opt, same_dtype};
use crate::tape::{same_tape, Op, OpCtx, Var};
use crate::value::{Scalar, Value};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Product,
    /// Result has the shape of the left factor; the second input is the right factor.
    ContractLeft,
    /// Result has the shape of the right factor; the second input is the left factor.
    ContractRight,
}

struct Kron {
    kind: Kind,
}

fn kron_mat<T: Scalar>(a: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    let (p, q) = b.shape();
    Mat::from_fn(a.nrows() * p, a.ncols() * q, |r, c| {
        a[(r / p, c / q)] * b[(r % p, c % q)]
    })
}

fn contract_left<T: Scalar>(g: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    let (p, q) = b.shape();
    let (m, n) = (g.nrows() / p, g.ncols() / q);
    Mat::from_fn(m, n, |i, j| {
        let mut s = T::from_f64(0.0);
        for l in 0..q {
            for k in 0..p {
                s += b[(k, l)].cj() * g[(i * p + k, j * q + l)];
            }
        }
        s
    })
}

fn contract_right<T: Scalar>(g: &Mat<T>, a: &Mat<T>) -> Mat<T> {
    let (m, n) = a.shape();
    let (p, q) = (g.nrows() / m, g.ncols() / n);
    Mat::from_fn(p, q, |k, l| {
        let mut s = T::from_f64(0.0);
        for j in 0..n {
            for i in 0..m {
                s += a[(i, j)].cj() * g[(i * p + k, j * q + l)];
            }
        }
        s
    })
}

fn is_empty(v: Var<'_>) -> bool {
    let (m, n) = v.shape();
    m == 0 || n == 0
}

fn zeros_like(v: Var<'_>) -> Result<Var<'_>> {
    let (m, n) = v.shape();
    v.tape().constant(crate::Value::zeros(v.dtype(), m, n))
}

impl Op for Kron {
    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Product => "kron",
            Kind::ContractLeft => "kron_contract_left",
            Kind::ContractRight => "kron_contract_right",
        }
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(h) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (x, y) = (ctx.input(0), ctx.input(1));
        let (gx, gy) = match self.kind {
            // C = X ⊗ Y; with an empty factor C is empty and the other factor's cotangent
            // is an empty sum (zero), which the contractions cannot infer the shape of
            Kind::Product => {
                let (zero, empty) = (zeros_like, is_empty);
                (
                    ctx.needs_grad(0)
                        .then(|| {
                            if empty(y) {
                                zero(x)
                            } else {
                                h.kron_contract_left(y)
                            }
                        })
                        .transpose()?,
                    ctx.needs_grad(1)
                        .then(|| {
                            if empty(x) {
                                zero(y)
                            } else {
                                h.kron_contract_right(x)
                            }
                        })
                        .transpose()?,
                )
            }
            // H = kcl(G = X, B = Y); with an empty H (and so an empty G) the cotangent of B
            // is an empty sum
            Kind::ContractLeft => (
                ctx.needs_grad(0).then(|| h.kron(y)).transpose()?,
                ctx.needs_grad(1)
                    .then(|| {
                        if is_empty(h) {
                            zeros_like(y)
                        } else {
                            x.kron_contract_right(h)
                        }
                    })
                    .transpose()?,
            ),
            // H = kcr(G = X, A = Y)
            Kind::ContractRight => (
                ctx.needs_grad(0).then(|| y.kron(h)).transpose()?,
                ctx.needs_grad(1)
                    .then(|| {
                        if is_empty(h) {
                            zeros_like(y)
                        } else {
                            x.kron_contract_left(h)
                        }
                    })
                    .transpose()?,
            ),
        };
        Ok(vec![gx, gy])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let (x, y) = (ctx.input(0), ctx.input(1));
        let f = |a: Var<'t>, b: Var<'t>| match self.kind {
            Kind::Product => a.kron(b),
            Kind::ContractLeft => a.kron_contract_left(b),
            Kind::ContractRight => a.kron_contract_right(b),
        };
        let tx = t[0].map(|dx| f(dx, y)).transpose()?;
        let ty = t[1].map(|dy| f(x, dy)).transpose()?;
        Ok(vec![add_opt(tx, ty)?])
    }
}

impl<'t> Var<'t> {
    fn kron_any(self, other: Var<'t>, kind: Kind) -> Result<Var<'t>> {
        let name = Kron { kind }.name();
        let tape = same_tape(name, &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_dtype(name, &a, &b)?;
        if kind == Kind::Product {
            let ((m, n), (p, q)) = (a.shape(), b.shape());
            let rows = m.saturating_mul(p);
            let cols = n.saturating_mul(q);
            crate::ops::entries(name, rows, cols)?;
        } else {
            let (gm, gn) = a.shape();
            let (fm, fn_) = b.shape();
            if fm == 0 || fn_ == 0 || gm % fm != 0 || gn % fn_ != 0 {
                return Err(EngineError::ShapeMismatch {
                    op: name,
                    lhs: a.shape(),
                    rhs: b.shape(),
                    hint: "the cotangent's shape must be a multiple of the factor's shape, and the factor must have entries",
                });
            }
        }
        let out = match (&*a, &*b) {
            (Value::Real(x), Value::Real(y)) => Value::Real(match kind {
                Kind::Product => kron_mat(x, y),
                Kind::ContractLeft => contract_left(x, y),
                Kind::ContractRight => contract_right(x, y),
            }),
            (Value::Complex(x), Value::Complex(y)) => Value::Complex(match kind {
                Kind::Product => kron_mat(x, y),
                Kind::ContractLeft => contract_left(x, y),
                Kind::ContractRight => contract_right(x, y),
            }),
            _ => unreachable!("dtypes checked above"),
        };
        tape.record1(Rc::new(Kron { kind }), &[self, other], out)
    }

    /// Kronecker product `self ⊗ other`.
    ///
    /// # Errors
    /// dtype mismatch; Vars from different tapes.
    pub fn kron(self, other: Var<'t>) -> Result<Var<'t>> {
        self.kron_any(other, Kind::Product)
    }

    /// `Σ_{k,l} conj(B[k,l]) G[i p + k, j q + l]` with `G = self`, `B = b` (p×q): the adjoint
    /// of `A ↦ A ⊗ B`.
    ///
    /// # Errors
    /// The shape of `self` is not a multiple of that of `b`; dtype mismatch.
    pub fn kron_contract_left(self, b: Var<'t>) -> Result<Var<'t>> {
        self.kron_any(b, Kind::ContractLeft)
    }

    /// `Σ_{i,j} conj(A[i,j]) G[i p + k, j q + l]` with `G = self`, `A = a` (m×n): the adjoint
    /// of `B ↦ A ⊗ B`.
    ///
    /// # Errors
    /// The shape of `self` is not a multiple of that of `a`; dtype mismatch.
    pub fn kron_contract_right(self, a: Var<'t>) -> Result<Var<'t>> {
        self.kron_any(a, Kind::ContractRight)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value};

    #[test]
    fn forward_closed_form() {
        let t = Tape::new();
        let a = t
            .constant(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]]))
            .unwrap();
        let b = t
            .constant(Value::Real(faer::mat![[0.0, 5.0], [6.0, 7.0]]))
            .unwrap();
        let c = a.kron(b).unwrap().value();
        let want = faer::mat![
            [0.0, 5.0, 0.0, 10.0],
            [6.0, 7.0, 12.0, 14.0],
            [0.0, 15.0, 0.0, 20.0],
            [18.0, 21.0, 24.0, 28.0]
        ];
        assert!(c.rel_diff(&Value::Real(want)).unwrap() == 0.0);
    }

    #[test]
    fn rules() {
        for make in [real_matrix, complex_matrix] {
            assert_rules(
                "kron",
                |_, x| x[0].kron(x[1]),
                &[make(2, 3, 81), make(3, 2, 82)],
            );
            assert_rules(
                "kron 1×1",
                |_, x| x[0].kron(x[1]),
                &[make(1, 1, 83), make(2, 2, 84)],
            );
            assert_rules(
                "kron_contract_left",
                |_, x| x[0].kron_contract_left(x[1]),
                &[make(6, 6, 85), make(3, 2, 86)],
            );
            assert_rules(
                "kron_contract_right",
                |_, x| x[0].kron_contract_right(x[1]),
                &[make(6, 6, 87), make(2, 3, 88)],
            );
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let g = t.leaf(real_matrix(5, 4, 1)).unwrap();
        let b = t.leaf(real_matrix(2, 2, 1)).unwrap();
        assert!(matches!(
            g.kron_contract_left(b),
            Err(EngineError::ShapeMismatch { .. })
        ));
        let c = t.leaf(complex_matrix(2, 2, 1)).unwrap();
        assert!(matches!(b.kron(c), Err(EngineError::DTypeMismatch { .. })));
    }
}
