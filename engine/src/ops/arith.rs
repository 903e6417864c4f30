//! Affine entrywise arithmetic: `add`, `sub`, `neg`, `scale` (by a constant), `add_scalar`
//! (every entry plus a constant) and `add_identity` (`A + cI`).
//!
//! All are affine, so each rule is the linear part or its adjoint:
//! - `C = A + B`: tangent `Ċ = Ȧ + Ḃ`; adjoint `Ā = C̄`, `B̄ = C̄`.
//! - `C = A − B`: `Ċ = Ȧ − Ḃ`; `Ā = C̄`, `B̄ = −C̄`.
//! - `C = cA`: `Ċ = cȦ`; `Ā = c̄ C̄` (conjugate of c; c real for real A).
//! - `C = A + c·1` and `C = A + cI`: `Ċ = Ȧ`; `Ā = C̄`.
//!
//! Derivation: docs/math/arith.md.

use std::rc::Rc;

use crate::error::{EngineError, Result};
use crate::ops::{add_opt, ew1, ew2, same_dtype, same_shape, square, sub_opt};
use crate::tape::{same_tape, Ct, Op, OpCtx, Var};
use crate::value::{Scalar, Value, C64};
use crate::{map_value, map_value2};

struct Add;
struct Sub;
struct Neg;
struct Scale {
    c: C64,
}
struct Shift;

impl Op for Add {
    fn name(&self) -> &'static str {
        "add"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0], ct[0]])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        out.extend([ct[0].clone(), ct[0].clone()]);
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![add_opt(t[0], t[1])?])
    }
}

impl Op for Sub {
    fn name(&self) -> &'static str {
        "sub"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let gb = if ctx.needs_grad(1) {
            Some(g.neg()?)
        } else {
            None
        };
        Ok(vec![Some(g), gb])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let Some(g) = &ct[0] else {
            out.extend([None, None]);
            return Ok(true);
        };
        let gb = ctx.needs_grad(1).then(|| neg_ct(g));
        out.extend([Some(g.clone()), gb]);
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![sub_opt(t[0], t[1])?])
    }
}

impl Op for Neg {
    fn name(&self) -> &'static str {
        "neg"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0].map(|g| g.neg()).transpose()?])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        out.push(ct[0].as_ref().map(neg_ct));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|g| g.neg()).transpose()?])
    }
}

impl Op for Scale {
    fn name(&self) -> &'static str {
        "scale"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| scale_any(g, self.c.conj()))
            .transpose()?])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let Some(g) = &ct[0] else {
            out.push(None);
            return Ok(true);
        };
        let c = self.c.conj();
        out.push(Some(if c.im == 0.0 {
            // as `scale`: |c·x| ≤ |c|·b (0·∞ is NaN: no bound, the sweep scans)
            Ct::new(
                map_value!(&*g.value, x => scale_mat_f64(x, c.re)),
                c.re.abs() * g.bound,
            )
        } else {
            // as `scale_complex` (complex cotangents only; no bound proved)
            let Value::Complex(x) = &*g.value else {
                return Ok(false);
            };
            Ct::new(Value::Complex(scale_mat(x, c)), f64::INFINITY)
        }));
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|g| scale_any(g, self.c)).transpose()?])
    }
}

impl Op for Shift {
    fn name(&self) -> &'static str {
        "add_scalar"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        _: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        out.push(ct[0].clone());
        Ok(true)
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]])
    }
}

/// `−g` on a value, as [`Var::neg`] computes it (the bound carries over).
fn neg_ct(g: &Ct) -> Ct {
    Ct::new(map_value!(&*g.value, x => ew1(x, |p| -p)), g.bound)
}

fn scale_any(x: Var<'_>, c: C64) -> Result<Var<'_>> {
    if c.im == 0.0 {
        x.scale(c.re)
    } else {
        x.scale_complex(c)
    }
}

fn scale_mat<T: Scalar>(a: &faer::Mat<T>, c: T) -> faer::Mat<T> {
    ew1(a, |x| x * c)
}

fn scale_mat_f64<T: Scalar>(a: &faer::Mat<T>, c: f64) -> faer::Mat<T> {
    scale_mat(a, T::from_f64(c))
}

/// `a + c` on every entry, or on the diagonal only.
fn shift_mat<T: Scalar>(a: &faer::Mat<T>, c: f64, diagonal_only: bool) -> faer::Mat<T> {
    let c = T::from_f64(c);
    if diagonal_only {
        let mut y = a.clone();
        for i in 0..y.nrows().min(y.ncols()) {
            y[(i, i)] += c;
        }
        y
    } else {
        ew1(a, |x| x + c)
    }
}

impl<'t> Var<'t> {
    /// Entrywise sum `self + other`.
    ///
    /// # Errors
    /// Shape or dtype mismatch; Vars from different tapes.
    pub fn add(self, other: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("add", &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_shape("add", &a, &b)?;
        let out = map_value2!(&*a, &*b, x, y => ew2(x, y, |p, q| p + q),
            EngineError::DTypeMismatch { op: "add", lhs: a.dtype(), rhs: b.dtype() });
        // |x + y| ≤ |x| + |y|, and rounding is monotone
        let bound = tape.bound(self) + tape.bound(other);
        tape.record1_bounded(shared_op!(Add), &[self, other], out, bound)
    }

    /// Entrywise difference `self − other`.
    ///
    /// # Errors
    /// Shape or dtype mismatch; Vars from different tapes.
    pub fn sub(self, other: Var<'t>) -> Result<Var<'t>> {
        let tape = same_tape("sub", &[self, other])?;
        let (a, b) = (self.rc(), other.rc());
        same_shape("sub", &a, &b)?;
        same_dtype("sub", &a, &b)?;
        let out = map_value2!(&*a, &*b, x, y => ew2(x, y, |p, q| p - q),
            EngineError::DTypeMismatch { op: "sub", lhs: a.dtype(), rhs: b.dtype() });
        let bound = tape.bound(self) + tape.bound(other);
        tape.record1_bounded(shared_op!(Sub), &[self, other], out, bound)
    }

    /// Negation `−self`.
    ///
    /// # Errors
    /// None in practice (kept for a uniform op signature).
    pub fn neg(self) -> Result<Var<'t>> {
        let a = self.rc();
        let out = map_value!(&*a, x => ew1(x, |p| -p));
        let tape = self.tape();
        tape.record1_bounded(shared_op!(Neg), &[self], out, tape.bound(self))
    }

    /// `c · self` for a real constant `c`.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `c` is not finite.
    pub fn scale(self, c: f64) -> Result<Var<'t>> {
        if !c.is_finite() {
            return Err(EngineError::InvalidArgument {
                op: "scale",
                message: format!("the constant must be finite, got {c}"),
            });
        }
        let a = self.rc();
        let out = map_value!(&*a, x => scale_mat_f64(x, c));
        let tape = self.tape();
        // |c·x| ≤ |c|·b; 0·∞ (no bound) is NaN, which record1_bounded treats as no bound
        tape.record1_bounded(
            Rc::new(Scale {
                c: C64::new(c, 0.0),
            }),
            &[self],
            out,
            c.abs() * tape.bound(self),
        )
    }

    /// `c · self` for a complex constant `c` (complex `self` only).
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for a real `self` (convert it with `to_complex`);
    /// [`EngineError::InvalidArgument`] when `c` is not finite.
    pub fn scale_complex(self, c: C64) -> Result<Var<'t>> {
        if !(c.re.is_finite() && c.im.is_finite()) {
            return Err(EngineError::InvalidArgument {
                op: "scale_complex",
                message: format!("the constant must be finite, got {c}"),
            });
        }
        let a = self.rc();
        let Value::Complex(x) = &*a else {
            return Err(EngineError::UnsupportedDType {
                op: "scale_complex",
                dtype: a.dtype(),
                hint: "call to_complex() on the matrix first, or use scale() with a real constant",
            });
        };
        let out = Value::Complex(scale_mat(x, c));
        self.tape().record1(Rc::new(Scale { c }), &[self], out)
    }

    /// Adds the real constant `c` to every entry.
    ///
    /// # Errors
    /// [`EngineError::InvalidArgument`] when `c` is not finite.
    pub fn add_scalar(self, c: f64) -> Result<Var<'t>> {
        if !c.is_finite() {
            return Err(EngineError::InvalidArgument {
                op: "add_scalar",
                message: format!("the constant must be finite, got {c}"),
            });
        }
        let a = self.rc();
        let out = map_value!(&*a, x => shift_mat(x, c, false));
        self.tape().record1(shared_op!(Shift), &[self], out)
    }

    /// `self + c I` for a square `self` and a real constant `c`.
    ///
    /// # Errors
    /// [`EngineError::NotSquare`]; [`EngineError::InvalidArgument`] when `c` is not finite.
    pub fn add_identity(self, c: f64) -> Result<Var<'t>> {
        if !c.is_finite() {
            return Err(EngineError::InvalidArgument {
                op: "add_identity",
                message: format!("the constant must be finite, got {c}"),
            });
        }
        let a = self.rc();
        square("add_identity", &a)?;
        let out = map_value!(&*a, x => shift_mat(x, c, true));
        self.tape().record1(shared_op!(Shift), &[self], out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{Tape, C64};

    #[test]
    fn forward_closed_form() {
        let t = Tape::new();
        let a = t.constant(real_matrix(2, 3, 1)).unwrap();
        let b = t.constant(real_matrix(2, 3, 2)).unwrap();
        let s = a.add(b).unwrap().sub(b).unwrap().value();
        assert!(s.rel_diff(&a.value()).unwrap() < 1e-15);
        let n = a
            .neg()
            .unwrap()
            .scale(-2.0)
            .unwrap()
            .add_scalar(1.0)
            .unwrap()
            .value();
        let want = a.value();
        let (ar, nr) = (want.as_real().unwrap(), n.as_real().unwrap());
        for i in 0..2 {
            for j in 0..3 {
                assert_eq!(nr[(i, j)], 2.0 * ar[(i, j)] + 1.0);
            }
        }
        let sq = t.constant(real_matrix(3, 3, 3)).unwrap();
        let d = sq.add_identity(2.5).unwrap().sub(sq).unwrap().value();
        let d = d.as_real().unwrap();
        assert_eq!((d[(0, 0)], d[(1, 1)], d[(0, 1)]), (2.5, 2.5, 0.0));
    }

    #[test]
    fn rules_real_and_complex() {
        for (m, n) in [(1, 1), (2, 3), (4, 4)] {
            for make in [real_matrix, complex_matrix] {
                let a = make(m, n, 11);
                let b = make(m, n, 12);
                assert_rules("add", |_, x| x[0].add(x[1]), &[a.clone(), b.clone()]);
                assert_rules("sub", |_, x| x[0].sub(x[1]), &[a.clone(), b.clone()]);
                assert_rules("neg", |_, x| x[0].neg(), std::slice::from_ref(&a));
                assert_rules("scale", |_, x| x[0].scale(-1.5), std::slice::from_ref(&a));
                assert_rules(
                    "add_scalar",
                    |_, x| x[0].add_scalar(0.5),
                    std::slice::from_ref(&a),
                );
            }
            assert_rules(
                "scale_complex",
                |_, x| x[0].scale_complex(C64::new(0.3, -1.2)),
                &[complex_matrix(m, n, 5)],
            );
        }
        assert_rules(
            "add_identity",
            |_, x| x[0].add_identity(2.0),
            &[real_matrix(3, 3, 4)],
        );
        assert_rules(
            "add_identity",
            |_, x| x[0].add_identity(2.0),
            &[complex_matrix(3, 3, 4)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let a = t.leaf(real_matrix(2, 3, 1)).unwrap();
        let b = t.leaf(real_matrix(3, 2, 1)).unwrap();
        let c = t.leaf(complex_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            a.add(b),
            Err(crate::EngineError::ShapeMismatch { op: "add", .. })
        ));
        assert!(matches!(
            a.sub(c),
            Err(crate::EngineError::DTypeMismatch { op: "sub", .. })
        ));
        assert!(matches!(
            a.add_identity(1.0),
            Err(crate::EngineError::NotSquare { .. })
        ));
        assert!(matches!(
            a.scale(f64::NAN),
            Err(crate::EngineError::InvalidArgument { .. })
        ));
        assert!(matches!(
            a.scale_complex(C64::new(1.0, 1.0)),
            Err(crate::EngineError::UnsupportedDType { .. })
        ));
        let other = Tape::new();
        let d = other.leaf(real_matrix(2, 3, 1)).unwrap();
        assert!(matches!(
            a.add(d),
            Err(crate::EngineError::ForeignVar { .. })
        ));
    }

    /// Sums and scalings that overflow are refused although their outputs are not scanned
    /// when the inputs' bounds prove them finite: 1e308 + 1e308, 1e308 − (−1e308), 2·1e308
    /// all have infinite bounds, so they are scanned. A bound of max(b_x, b_y) for a sum, or
    /// b_x without |c| for a scaling, would let ∞ onto the tape. Bounds that hold are kept.
    #[test]
    fn overflowing_sums_and_scalings_are_refused() {
        use crate::{EngineError, Value};
        let t = Tape::new();
        let big = t.leaf(Value::Real(faer::mat![[1e308, 1.0]])).unwrap();
        let neg = big.neg().unwrap();
        assert!(matches!(
            big.add(big),
            Err(EngineError::NonFinite { op: "add", .. })
        ));
        assert!(matches!(
            big.sub(neg),
            Err(EngineError::NonFinite { op: "sub", .. })
        ));
        assert!(matches!(
            big.scale(2.0),
            Err(EngineError::NonFinite { op: "scale", .. })
        ));
        // finite results keep bounds at least their entries
        let a = t.leaf(real_matrix(3, 2, 1)).unwrap();
        let b = t.leaf(real_matrix(3, 2, 2)).unwrap();
        let max_abs = |v: crate::Var<'_>| {
            let m = v.value();
            let m = m.as_real().unwrap();
            (0..m.ncols())
                .flat_map(|j| (0..m.nrows()).map(move |i| (i, j)))
                .fold(0.0f64, |acc, (i, j)| acc.max(m[(i, j)].abs()))
        };
        for v in [
            a.add(b).unwrap(),
            a.sub(b).unwrap(),
            a.neg().unwrap(),
            a.scale(-3.5).unwrap(),
            a.scale(0.0).unwrap(),
            neg,
        ] {
            let bound = t.bound(v);
            assert!(bound.is_finite() && bound >= max_abs(v), "{bound}");
        }
    }
}
