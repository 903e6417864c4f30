//! Principal functions of general square matrices: `expm`, `logm`, `sqrtm` (real and
//! complex), with Fréchet derivatives by the block-triangular identity
//!
//! `f([[A, E], [0, A]]) = [[f(A), L_f(A, E)], [0, f(A)]]`   (Higham, *Functions of
//! Matrices*, Thm 3.6 / Mathias 1996).
//!
//! - tangent: `Ẏ = L_f(A, Ȧ)`;
//! - adjoint: `Ā = L_f(Aᴴ, Ȳ)` — for f with real Taylor coefficients (exp, log, sqrt),
//!   the adjoint of `L_f(A, ·)` under `Re tr(XᴴY)` is `L_f(Aᴴ, ·)` (Al-Mohy & Higham,
//!   SIAM J. Matrix Anal. Appl. 30 (2009)); the dot-product test checks it numerically.
//!
//! Both rules are written as `slice(f(block(·)))` with engine ops and this same op, so
//! they are recordable: second order evaluates f on a 4n×4n block matrix.
//!
//! Forward algorithms (built on faer GEMM and LU, no hand-written decomposition):
//! - `expm`: scaling and squaring with the degree-13 Padé approximant (Higham 2005);
//! - `sqrtm`: the Denman–Beavers iteration (quadratic convergence for matrices with no
//!   eigenvalue on the closed negative real axis);
//! - `logm`: inverse scaling and squaring: repeated square roots until ‖A − I‖₁ ≤ 1/4, then
//!   `log(I + X) = ∫₀¹ X (I + tX)⁻¹ dt` by 8-point Gauss–Legendre (error < 1e-19 there).
//!
//! Domain: `logm` and `sqrtm` need no eigenvalue on the closed negative real axis (the
//! principal branch is not defined or not smooth there): a real matrix with a negative
//! eigenvalue has a complex principal log/sqrt (convert with `to_complex`), and a
//! singular matrix has no log and a non-differentiable sqrt. Checked with faer's
//! eigenvalues, relative tolerance 1e-12. Derivation: docs/math/general_matrix_functions.md.

use std::rc::Rc;

use faer::linalg::solvers::Solve;
use faer::Mat;
use matgrad_engine::ops::matmul::gemm;
use matgrad_engine::pool::from_cols;
use matgrad_engine::{EngineError, Form, Op, OpCtx, Result as EResult, Scalar, Value, Var};

use crate::error::{Result, SpectralError};

/// A principal matrix function of a general square matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneralFn {
    /// Matrix exponential.
    Exp,
    /// Principal logarithm.
    Log,
    /// Principal square root.
    Sqrt,
}

impl GeneralFn {
    fn name(self) -> &'static str {
        match self {
            GeneralFn::Exp => "expm",
            GeneralFn::Log => "logm",
            GeneralFn::Sqrt => "sqrtm",
        }
    }
}

fn norm1<T: Scalar>(a: &Mat<T>) -> f64 {
    (0..a.ncols())
        .map(|j| (0..a.nrows()).map(|i| a[(i, j)].modulus()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// `c · a`, column by column over slices.
fn scaled<T: Scalar>(a: &Mat<T>, c: f64) -> Mat<T> {
    let c = T::from_f64(c);
    from_cols(a.nrows(), a.ncols(), |j, out| {
        for (o, &x) in out.iter_mut().zip(a.col_as_slice(j)) {
            *o = x * c;
        }
    })
}

fn mm<T: Scalar>(a: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    gemm(a.as_ref(), Form::Plain, b.as_ref(), Form::Plain)
}

fn lin<T: Scalar>(terms: &[(f64, &Mat<T>)], eye: f64) -> Mat<T> {
    let n = terms[0].1.nrows();
    // column by column over slices (no per-entry index check; twelfth round), each entry
    // summed in the order of `terms`
    from_cols(n, n, |j, out| {
        out.fill(T::from_f64(0.0));
        out[j] = T::from_f64(eye);
        for (c, m) in terms {
            let c = T::from_f64(*c);
            for (o, &x) in out.iter_mut().zip(m.col_as_slice(j)) {
                *o += x * c;
            }
        }
    })
}

fn solve<T: Scalar>(a: &Mat<T>, b: &Mat<T>) -> Mat<T> {
    let lu = a.partial_piv_lu();
    let mut x = b.clone();
    lu.solve_in_place(x.as_mut());
    x
}

fn inverse<T: Scalar>(a: &Mat<T>) -> Mat<T> {
    solve(a, &Mat::identity(a.nrows(), a.ncols()))
}

/// Scaling and squaring, Padé 13 (Higham 2005, Alg. 2.3 with the degree-13 branch only).
fn expm_mat<T: Scalar>(a: &Mat<T>) -> Mat<T> {
    const B: [f64; 14] = [
        64764752532480000.0,
        32382376266240000.0,
        7771770303897600.0,
        1187353796428800.0,
        129060195264000.0,
        10559470521600.0,
        670442572800.0,
        33522128640.0,
        1323241920.0,
        40840800.0,
        960960.0,
        16380.0,
        182.0,
        1.0,
    ];
    const THETA13: f64 = 5.371920351148152;
    let nrm = norm1(a);
    let s = if nrm > THETA13 {
        (nrm / THETA13).log2().ceil() as i32
    } else {
        0
    };
    let scale = 0.5f64.powi(s);
    let a = scaled(a, scale);
    let a2 = mm(&a, &a);
    let a4 = mm(&a2, &a2);
    let a6 = mm(&a4, &a2);
    let u_in = mm(&a6, &lin(&[(B[13], &a6), (B[11], &a4), (B[9], &a2)], 0.0));
    let u_in = lin(&[(1.0, &u_in), (B[7], &a6), (B[5], &a4), (B[3], &a2)], B[1]);
    let u = mm(&a, &u_in);
    let v = mm(&a6, &lin(&[(B[12], &a6), (B[10], &a4), (B[8], &a2)], 0.0));
    let v = lin(&[(1.0, &v), (B[6], &a6), (B[4], &a4), (B[2], &a2)], B[0]);
    let mut r = solve(
        &lin(&[(1.0, &v), (-1.0, &u)], 0.0),
        &lin(&[(1.0, &v), (1.0, &u)], 0.0),
    );
    for _ in 0..s {
        r = mm(&r, &r);
    }
    r
}

/// Denman–Beavers iteration for the principal square root.
fn sqrtm_mat<T: Scalar>(a: &Mat<T>) -> Result<Mat<T>> {
    let n = a.nrows();
    let mut y = a.clone();
    let mut z = Mat::<T>::identity(n, n);
    for _ in 0..100 {
        let (yi, zi) = (inverse(&y), inverse(&z));
        let y1 = lin(&[(0.5, &y), (0.5, &zi)], 0.0);
        let z1 = lin(&[(0.5, &z), (0.5, &yi)], 0.0);
        let diff = norm1(&lin(&[(1.0, &y1), (-1.0, &y)], 0.0));
        y = y1;
        z = z1;
        if diff <= 1e-15 * norm1(&y).max(f64::MIN_POSITIVE) {
            return Ok(y);
        }
    }
    Err(SpectralError::NoConvergence {
        op: "sqrtm",
        detail: "Denman–Beavers iteration did not converge in 100 steps".into(),
    })
}

/// Inverse scaling and squaring with Gauss–Legendre quadrature for log(I + X).
fn logm_mat<T: Scalar>(a: &Mat<T>) -> Result<Mat<T>> {
    const X8: [f64; 4] = [
        0.183_434_642_495_649_8,
        0.525_532_409_916_329,
        0.796_666_477_413_626_7,
        0.960_289_856_497_536_3,
    ];
    const W8: [f64; 4] = [
        0.362_683_783_378_362,
        0.313_706_645_877_887_3,
        0.222_381_034_453_374_5,
        0.101_228_536_290_376_3,
    ];
    let n = a.nrows();
    let eye = Mat::<T>::identity(n, n);
    let mut r = a.clone();
    let mut k = 0;
    while norm1(&lin(&[(1.0, &r), (-1.0, &eye)], 0.0)) > 0.25 {
        if k == 60 {
            return Err(SpectralError::NoConvergence {
                op: "logm",
                detail: "60 square roots did not bring A close to I".into(),
            });
        }
        r = sqrtm_mat(&r)?;
        k += 1;
    }
    let x = lin(&[(1.0, &r), (-1.0, &eye)], 0.0);
    let mut acc = Mat::<T>::zeros(n, n);
    for (node, w) in X8
        .iter()
        .flat_map(|&x| [-x, x])
        .zip(W8.iter().flat_map(|&w| [w, w]))
    {
        let t = 0.5 * (node + 1.0);
        let m = lin(&[(t, &x)], 1.0);
        let term = solve(&m, &x);
        acc = lin(&[(1.0, &acc), (0.5 * w, &term)], 0.0);
    }
    let scale = 2f64.powi(k);
    Ok(scaled(&acc, scale))
}

fn check_branch<T: Scalar>(f: GeneralFn, a: &Mat<T>) -> Result<()> {
    if f == GeneralFn::Exp {
        return Ok(());
    }
    let op = f.name();
    let ev = a.eigenvalues().map_err(|e| SpectralError::NoConvergence {
        op,
        detail: format!("{e:?}"),
    })?;
    let scale = ev.iter().fold(f64::MIN_POSITIVE, |m, z| m.max(z.norm()));
    for (index, z) in ev.iter().enumerate() {
        if z.im.abs() <= 1e-12 * scale && z.re <= 1e-12 * scale {
            let hint = if z.re.abs() <= 1e-12 * scale {
                "the matrix is singular: its principal logarithm does not exist and its square root is not differentiable"
            } else if T::DTYPE == matgrad_engine::DType::F64 {
                "a real matrix with a negative eigenvalue has a complex principal function; convert with to_complex"
            } else {
                "an eigenvalue on the negative real axis lies on the branch cut of the principal function"
            };
            return Err(SpectralError::SpectrumDomain {
                op,
                index,
                value: z.re,
                hint,
            });
        }
    }
    Ok(())
}

fn apply<T: Scalar>(f: GeneralFn, a: &Mat<T>) -> Result<Mat<T>> {
    check_branch(f, a)?;
    match f {
        GeneralFn::Exp => Ok(expm_mat(a)),
        GeneralFn::Sqrt => sqrtm_mat(a),
        GeneralFn::Log => logm_mat(a),
    }
}

struct MatFnGeneral {
    f: GeneralFn,
}

/// `L_f(X, E)`: the top-right block of `f([[X, E], [0, X]])`, with engine ops.
fn frechet<'t>(f: GeneralFn, x: Var<'t>, e: Var<'t>) -> EResult<Var<'t>> {
    let n = x.shape().0;
    let zero = x.tape().constant(Value::zeros(x.dtype(), n, n))?;
    let top = Var::hcat(&[x, e])?;
    let bottom = Var::hcat(&[zero, x])?;
    let m = Var::vcat(&[top, bottom])?;
    let y = matrix_function_general(m, f)?;
    y.slice(0..n, n..2 * n)
}

impl Op for MatFnGeneral {
    fn name(&self) -> &'static str {
        self.f.name()
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        Ok(vec![Some(frechet(self.f, ctx.input(0).adjoint()?, g)?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(d) = t[0] else { return Ok(vec![None]) };
        Ok(vec![Some(frechet(self.f, ctx.input(0), d)?)])
    }
}

/// A principal matrix function of a general square matrix (real or complex).
///
/// # Errors
/// Not square; eigenvalue on the branch cut (log, sqrt); no convergence.
pub fn matrix_function_general(a: Var<'_>, f: GeneralFn) -> Result<Var<'_>> {
    let op = f.name();
    let out = a.with_value(|v| -> Result<Value> {
        let (m, n) = v.shape();
        if m != n {
            return Err(EngineError::NotSquare { op, shape: (m, n) });
        }
        Ok(match v {
            Value::Real(x) => Value::Real(apply(f, x)?),
            Value::Complex(x) => Value::Complex(apply(f, x)?),
        })
    })?;
    a.tape().record1(Rc::new(MatFnGeneral { f }), &[a], out)
}

/// Matrix exponential of a general square matrix.
///
/// # Errors
/// Not square.
pub fn expm(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_general(a, GeneralFn::Exp)
}

/// Principal logarithm of a general square matrix.
///
/// # Errors
/// Not square; an eigenvalue on the closed negative real axis (complex input) or a
/// negative/zero real eigenvalue (real input); no convergence.
pub fn logm(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_general(a, GeneralFn::Log)
}

/// Principal square root of a general square matrix.
///
/// # Errors
/// As [`logm`].
pub fn sqrtm(a: Var<'_>) -> Result<Var<'_>> {
    matrix_function_general(a, GeneralFn::Sqrt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix, spd_from_seed};
    use matgrad_engine::Tape;

    fn well(make: fn(usize, usize, u64) -> Value, n: usize, seed: u64) -> Value {
        // eigenvalues near 2 ± 0.5: well inside the principal domain
        let a = make(n, n, seed);
        Value::zeros(a.dtype(), n, n)
            .axpy(0.5 / (n as f64).sqrt(), &a)
            .unwrap()
            .axpy(2.0, &Value::identity(a.dtype(), n))
            .unwrap()
    }

    #[test]
    fn forward_closed_forms_and_reconstruction() {
        let t = Tape::new();
        // exp of a nilpotent Jordan block: I + N + N²/2
        let n = t
            .constant(Value::Real(faer::mat![
                [0.0, 1.0, 0.0],
                [0.0, 0.0, 1.0],
                [0.0, 0.0, 0.0]
            ]))
            .unwrap();
        let e = expm(n).unwrap().value();
        let want = Value::Real(faer::mat![
            [1.0, 1.0, 0.5],
            [0.0, 1.0, 1.0],
            [0.0, 0.0, 1.0]
        ]);
        assert!(e.rel_diff(&want).unwrap() < 1e-15);
        // rotation generator: exp([[0, -θ], [θ, 0]]) = rotation by θ
        let th = 0.7f64;
        let r = expm(
            t.constant(Value::Real(faer::mat![[0.0, -th], [th, 0.0]]))
                .unwrap(),
        )
        .unwrap()
        .value();
        let want = Value::Real(faer::mat![[th.cos(), -th.sin()], [th.sin(), th.cos()]]);
        assert!(r.rel_diff(&want).unwrap() < 1e-15);
        for size in [1, 2, 3, 8, 31] {
            for make in [real_matrix, complex_matrix] {
                let a = t.constant(well(make, size, size as u64)).unwrap();
                let l = logm(a).unwrap();
                let back = expm(l).unwrap();
                assert!(
                    back.value().rel_diff(&a.value()).unwrap() < 1e-12,
                    "exp(log A) = A, n = {size}"
                );
                let s = sqrtm(a).unwrap();
                assert!(
                    s.matmul(s).unwrap().value().rel_diff(&a.value()).unwrap() < 1e-12,
                    "sqrt(A)² = A, n = {size}"
                );
            }
        }
        // large norm: scaling and squaring
        let big = t.constant(spd_from_seed(4, 30.0, 3)).unwrap();
        let e1 = expm(big).unwrap().value();
        let e2 = crate::expm_sym(big).unwrap().value();
        assert!(e1.rel_diff(&e2).unwrap() < 1e-12);
    }

    #[test]
    fn rules() {
        for make in [real_matrix, complex_matrix] {
            for n in [1, 2, 3] {
                let a = well(make, n, 10 + n as u64);
                assert_rules("expm", |_, x| expm(x[0]), std::slice::from_ref(&a));
                assert_rules("logm", |_, x| logm(x[0]), std::slice::from_ref(&a));
                assert_rules("sqrtm", |_, x| sqrtm(x[0]), std::slice::from_ref(&a));
            }
        }
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let neg = t
            .leaf(Value::Real(faer::mat![[-1.0, 0.0], [0.0, 2.0]]))
            .unwrap();
        assert!(matches!(
            logm(neg),
            Err(SpectralError::SpectrumDomain { op: "logm", .. })
        ));
        assert!(matches!(
            sqrtm(neg),
            Err(SpectralError::SpectrumDomain { op: "sqrtm", .. })
        ));
        assert!(
            logm(neg.to_complex().unwrap()).is_err(),
            "on the branch cut"
        );
        let sing = t
            .leaf(Value::Real(faer::mat![[1.0, 1.0], [1.0, 1.0]]))
            .unwrap();
        assert!(matches!(
            logm(sing),
            Err(SpectralError::SpectrumDomain { .. })
        ));
        let rect = t.leaf(Value::Real(faer::mat![[1.0, 2.0]])).unwrap();
        assert!(matches!(expm(rect), Err(EngineError::NotSquare { .. })));
        // a rotation by more than π/2 has a complex-conjugate pair, fine for logm
        let rot = t
            .leaf(Value::Real(faer::mat![[0.0, -1.0], [1.0, 0.0]]))
            .unwrap();
        assert!(logm(rot).is_ok());
    }
}
