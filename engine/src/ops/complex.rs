//! Moving between real and complex: `real`, `imag` (complex → real) and `to_complex`
//! (real → complex).
//!
//! These maps are only real-linear, and they are where the gradient convention shows.
//! With `⟨X, Y⟩ = Re tr(Xᴴ Y)` and the convention `z̄ = ∂L/∂Re z + i ∂L/∂Im z`:
//! - `y = Re z`: tangent `ẏ = Re ż`; adjoint `z̄ = ȳ` (embedded as complex);
//! - `y = Im z`: tangent `ẏ = Im ż`; adjoint `z̄ = i ȳ`;
//! - `z = x` (embedding): tangent `ż = ẋ`; adjoint `x̄ = Re z̄`.
//!
//! Derivation: docs/math/complex.md.

use std::rc::Rc;

use faer::Mat;

use crate::error::{EngineError, Result};
use crate::tape::{Op, OpCtx, Var};
use crate::value::{Value, C64};

struct RealPart;
struct ImagPart;
struct ToComplex;

impl Op for RealPart {
    fn name(&self) -> &'static str {
        "real"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0].map(|g| g.to_complex()).transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|z| z.real()).transpose()?])
    }
}

impl Op for ImagPart {
    fn name(&self) -> &'static str {
        "imag"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| g.to_complex()?.scale_complex(C64::new(0.0, 1.0)))
            .transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|z| z.imag()).transpose()?])
    }
}

impl Op for ToComplex {
    fn name(&self) -> &'static str {
        "to_complex"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0].map(|g| g.real()).transpose()?])
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0].map(|x| x.to_complex()).transpose()?])
    }
}

fn parts(z: &Mat<C64>, f: impl Fn(C64) -> f64) -> Mat<f64> {
    Mat::from_fn(z.nrows(), z.ncols(), |i, j| f(z[(i, j)]))
}

impl<'t> Var<'t> {
    /// Real part of a complex matrix (a real matrix is returned unchanged).
    ///
    /// # Errors
    /// None in practice.
    pub fn real(self) -> Result<Var<'t>> {
        let a = self.rc();
        match &*a {
            Value::Real(_) => Ok(self),
            Value::Complex(z) => {
                self.tape()
                    .record1(Rc::new(RealPart), &[self], Value::Real(parts(z, |c| c.re)))
            }
        }
    }

    /// Imaginary part of a complex matrix.
    ///
    /// # Errors
    /// [`EngineError::UnsupportedDType`] for a real matrix (its imaginary part is zero and
    /// carries no gradient; build zeros with a constant instead).
    pub fn imag(self) -> Result<Var<'t>> {
        let a = self.rc();
        match &*a {
            Value::Real(_) => Err(EngineError::UnsupportedDType {
                op: "imag",
                dtype: a.dtype(),
                hint: "a real matrix has no imaginary part; use a zero constant",
            }),
            Value::Complex(z) => {
                self.tape()
                    .record1(Rc::new(ImagPart), &[self], Value::Real(parts(z, |c| c.im)))
            }
        }
    }

    /// The real matrix as a complex one (a complex matrix is returned unchanged).
    ///
    /// # Errors
    /// None in practice.
    pub fn to_complex(self) -> Result<Var<'t>> {
        let a = self.rc();
        match &*a {
            Value::Complex(_) => Ok(self),
            Value::Real(_) => {
                self.tape()
                    .record1(Rc::new(ToComplex), &[self], Value::Complex(a.to_complex()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{assert_rules, complex_matrix, real_matrix};
    use crate::{EngineError, Tape, Value};

    #[test]
    fn forward() {
        let t = Tape::new();
        let z = t.constant(complex_matrix(2, 2, 1)).unwrap();
        let zv = z.value();
        let zc = zv.as_complex().unwrap();
        let re = z.real().unwrap().value();
        let im = z.imag().unwrap().value();
        assert_eq!(re.as_real().unwrap()[(1, 0)], zc[(1, 0)].re);
        assert_eq!(im.as_real().unwrap()[(1, 0)], zc[(1, 0)].im);
        let back = z.real().unwrap().to_complex().unwrap().value();
        assert_eq!(back.as_complex().unwrap()[(0, 1)].im, 0.0);
    }

    #[test]
    fn rules() {
        for (m, n) in [(1, 1), (2, 3)] {
            assert_rules("real", |_, x| x[0].real(), &[complex_matrix(m, n, 1)]);
            assert_rules("imag", |_, x| x[0].imag(), &[complex_matrix(m, n, 2)]);
            assert_rules(
                "to_complex",
                |_, x| x[0].to_complex(),
                &[real_matrix(m, n, 3)],
            );
        }
    }

    /// PyTorch's convention, by hand: for L = Re(z)² + 3 Im(z) at z = 1 + 2i,
    /// ∂L/∂Re z + i ∂L/∂Im z = 2 + 3i.
    #[test]
    fn gradient_convention_matches_pytorch() {
        let t = Tape::new();
        let z = t
            .leaf(Value::Complex(faer::mat![[crate::C64::new(1.0, 2.0)]]))
            .unwrap();
        let re = z.real().unwrap();
        let l = re
            .mul(re)
            .unwrap()
            .add(z.imag().unwrap().scale(3.0).unwrap())
            .unwrap();
        let g = t.grad(l, &[z]).unwrap();
        assert_eq!(
            g[0].as_complex().unwrap()[(0, 0)],
            crate::C64::new(2.0, 3.0)
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let x = t.leaf(real_matrix(2, 2, 1)).unwrap();
        assert!(matches!(
            x.imag(),
            Err(EngineError::UnsupportedDType { op: "imag", .. })
        ));
    }
}
