//! The shared forward step of every symmetric/Hermitian spectral op: validate, symmetrize,
//! decompose with faer; and the kernel `U (W ∘ Uᴴ G U) Uᴴ` that every rule of the
//! Daleckii–Krein family reduces to.

use faer::Mat;
use matgrad_engine::ops::matmul::{gemm, gemm_into, TRIANGULAR_MIN_N};
use matgrad_engine::pool::{from_cols, give, transposed};
use matgrad_engine::{EngineError, Form, Scalar, Value, HERMITIAN_RTOL};

use crate::error::{Result, SpectralError};

/// Eigendecomposition `sym(A) = U diag(λ) Uᴴ`, λ ascending. `u` has A's dtype.
#[derive(Clone, Debug)]
pub struct SymEig {
    /// Eigenvalues, ascending.
    pub lambda: Vec<f64>,
    /// Eigenvectors (columns), same dtype as the input.
    pub u: Value,
}

/// The order below which faer's self-adjoint eigensolver solves the tridiagonal problem
/// by the QR algorithm instead of divide and conquer (faer's default: 128, so that orders
/// 128…255 split into QR subproblems of up to 127). Measured in docs/PERFORMANCE.md
/// ("Fifth round"), real, 1 thread: the same time as faer's default below 128 (±3 % at
/// n = 96, depending on the spectrum), 3–6 % faster at n = 128 and 256; the eigenvectors
/// are more orthogonal (‖UᴴU − I‖_max 5e-15–6e-15 instead of 0.9e-14–1.4e-14 at n = 128,
/// two matrices). With 2 threads at n = 512 and 768 the thresholds 48–256 differed only
/// within the machine's noise; with 64, faer's parallel eigensolver pays from n = 192
/// ([`matgrad_engine::par::EIGH_PAR_MIN_N`]).
pub const EIGH_RECURSION_THRESHOLD: usize = 64;

/// faer's self-adjoint eigensolver on the lower triangle, with the parallelism chosen by
/// size ([`matgrad_engine::par::eigh_par`]) and divide and conquer from
/// [`EIGH_RECURSION_THRESHOLD`] up.
fn eig_of<T: Scalar>(op: &'static str, a: &Mat<T>) -> Result<(Vec<f64>, Mat<T>)> {
    use faer::linalg::evd;
    let n = a.nrows();
    let par = matgrad_engine::par::eigh_par(n);
    // faer writes every entry of the eigenvectors
    let mut u = matgrad_engine::pool::for_overwrite::<T>(n, n);
    let mut s = faer::diag::Diag::<T>::zeros(n);
    let mut params = <evd::SelfAdjointEvdParams as faer::Auto<T>>::auto();
    params.recursion_threshold = EIGH_RECURSION_THRESHOLD;
    let scratch =
        evd::self_adjoint_evd_scratch::<T>(n, evd::ComputeEigenvectors::Yes, par, params.into());
    matgrad_engine::pool::with_scratch(scratch, |stack| {
        evd::self_adjoint_evd(
            a.as_ref(),
            s.as_mut(),
            Some(u.as_mut()),
            par,
            stack,
            params.into(),
        )
    })
    .map_err(|err| SpectralError::NoConvergence {
        op,
        detail: format!("{err:?}"),
    })?;
    let lambda: Vec<f64> = (0..n).map(|i| s.column_vector()[i].re()).collect();
    Ok((lambda, u))
}

/// Validates a square, Hermitian (within [`HERMITIAN_RTOL`]) input and decomposes its
/// Hermitian part.
///
/// # Errors
/// Not square; not Hermitian; eigensolver failure.
pub fn decompose(op: &'static str, a: &Value) -> Result<SymEig> {
    let (m, n) = a.shape();
    if m != n {
        return Err(EngineError::NotSquare { op, shape: (m, n) });
    }
    let asym = a.asymmetry().unwrap_or(0.0);
    if asym > HERMITIAN_RTOL {
        return Err(EngineError::NotHermitian {
            op,
            asym,
            tol: HERMITIAN_RTOL,
        });
    }
    // faer reads one triangle; an exactly Hermitian input needs no symmetrized copy.
    let copy;
    let h = if asym == 0.0 {
        a
    } else {
        copy = a.hermitian_part();
        &copy
    };
    Ok(match h {
        Value::Real(x) => {
            let (lambda, u) = eig_of(op, x)?;
            SymEig {
                lambda,
                u: Value::Real(u),
            }
        }
        Value::Complex(x) => {
            let (lambda, u) = eig_of(op, x)?;
            SymEig {
                lambda,
                u: Value::Complex(u),
            }
        }
    })
}

/// `Y Uᴴ` when the product is known to be Hermitian (`Y = U W` with Hermitian W): only the
/// lower triangle is computed (faer's triangular GEMM, about half the flops) and mirrored.
pub fn hermitian_product<T: Scalar>(y: faer::MatRef<'_, T>, u: faer::MatRef<'_, T>) -> Mat<T> {
    hermitian_product_form(y, u, Form::Adjoint)
}

/// `Y op(U)` (`op`: the identity or the adjoint) when the product is known to be
/// Hermitian, as [`hermitian_product`].
fn hermitian_product_form<T: Scalar>(
    y: faer::MatRef<'_, T>,
    u: faer::MatRef<'_, T>,
    fu: Form,
) -> Mat<T> {
    let n = y.nrows();
    let mut out = matgrad_engine::pool::for_overwrite::<T>(n, n);
    hermitian_product_into(out.as_mut(), y, u, fu);
    out
}

/// [`hermitian_product_form`] written into `out` (n×n; every entry is written).
fn hermitian_product_into<T: Scalar>(
    mut out: faer::MatMut<'_, T>,
    y: faer::MatRef<'_, T>,
    u: faer::MatRef<'_, T>,
    fu: Form,
) {
    use faer::linalg::matmul::triangular::{matmul_with_conj, BlockStructure};
    let n = y.nrows();
    if n < TRIANGULAR_MIN_N {
        // below this order faer's triangular product costs more than the full one
        let par = matgrad_engine::par::gemm_par(n, n, y.ncols());
        gemm_into(out.as_mut(), y, Form::Plain, u, fu, par);
    } else {
        // the triangular product writes the lower triangle, mirror_lower the rest
        let (rhs, conj) = match fu {
            Form::Adjoint => (u.transpose(), faer::Conj::Yes),
            Form::Plain => (u, faer::Conj::No),
        };
        matmul_with_conj(
            out.as_mut(),
            BlockStructure::TriangularLower,
            faer::Accum::Replace,
            y,
            BlockStructure::Rectangular,
            faer::Conj::No,
            rhs,
            BlockStructure::Rectangular,
            conj,
            T::from_f64(1.0),
            matgrad_engine::par::gemm_par(n, n / 2, y.ncols()),
        );
    }
    matgrad_engine::ops::matmul::mirror_lower(out);
}

/// `out = U (W ∘ UᴴGU) Uᴴ` for a Hermitian `G` (n×n; every entry is written, by the last
/// product): both `UᴴGU = (UᴴG)(Uᴴ)ᴴ` and the outer product are Hermitian, so each takes one
/// full and one triangular product (3 n³ multiply-adds instead of 4; both exactly
/// Hermitian).
fn congruence_into<T: Scalar>(
    u: &Mat<T>,
    w: impl Fn(usize, usize) -> f64,
    g: &Mat<T>,
    out: faer::MatMut<'_, T>,
) {
    let n = u.nrows();
    let ug = gemm(u.as_ref(), Form::Adjoint, g.as_ref(), Form::Plain);
    let gt = hermitian_product_form(ug.as_ref(), u.as_ref(), Form::Plain);
    give(ug);
    // column by column over slices: no per-entry index check (twelfth round)
    let m = from_cols(n, n, |j, out| {
        for (i, (o, &x)) in out.iter_mut().zip(gt.col_as_slice(j)).enumerate() {
            *o = x * T::from_f64(w(i, j));
        }
    });
    give(gt);
    let um = gemm(u.as_ref(), Form::Plain, m.as_ref(), Form::Plain);
    give(m);
    hermitian_product_into(out, um.as_ref(), u.as_ref(), Form::Adjoint);
    give(um);
}

/// `U (W ∘ Uᴴ sym(G) U) Uᴴ`, the symmetrized copy of `G` given back to the pool after.
fn congruence_sym<T: Scalar>(u: &Mat<T>, w: impl Fn(usize, usize) -> f64, g: &Mat<T>) -> Mat<T> {
    let n = u.nrows();
    let mut out = matgrad_engine::pool::for_overwrite::<T>(n, n);
    congruence_sym_into(u, w, g.as_ref(), out.as_mut());
    out
}

/// `U (W ∘ Uᴴ sym(G) U) Uᴴ` written into `out`, for a `G` that may be a view (one block of
/// a stacked cotangent): the batched rules write each block's result into its rows of the
/// stacked output, with no per-block copy of `G` or of the result.
///
/// # Panics
/// When `u`, `g` and `out` are not all n×n (faer's assertions); the callers size them.
pub(crate) fn congruence_sym_into<T: Scalar>(
    u: &Mat<T>,
    w: impl Fn(usize, usize) -> f64,
    g: faer::MatRef<'_, T>,
    out: faer::MatMut<'_, T>,
) {
    let h = hermitian(g);
    congruence_into(u, w, &h, out);
    give(h);
}

/// `(R + Rᴴ)/2`, from a copy of `Rᴴ` (tiled for large R) and a pass over contiguous
/// columns: the same expression, entry by entry, as `(r[(i, j)] + r[(j, i)].cj()) · ½`.
/// `r` may be a view into a larger matrix (a block of a stack).
fn hermitian<T: Scalar>(r: faer::MatRef<'_, T>) -> Mat<T> {
    if r.row_stride() != 1 {
        // (not reached by the engine's values, which are column-major)
        let c = matgrad_engine::pool::owned(r);
        let out = hermitian(c.as_ref());
        give(c);
        return out;
    }
    let rh = transposed(r, true);
    let col = |j: usize| -> &[T] {
        r.col(j)
            .try_as_col_major()
            .expect("unit row stride: contiguous columns")
            .as_slice()
    };
    let out = from_cols(r.nrows(), r.ncols(), |j, out| {
        let (x, y) = (col(j), rh.col_as_slice(j));
        for ((o, &p), &q) in out.iter_mut().zip(x).zip(y) {
            *o = (p + q) * T::from_f64(0.5);
        }
    });
    give(rh);
    out
}

/// `U (W ∘ Uᴴ sym(G) U) Uᴴ` with a real symmetric weight matrix `W = w(i, j)`: two full and
/// two triangular products.
///
/// # Errors
/// dtype or shape mismatch between `U` and `G`.
pub fn weighted_congruence(u: &Value, w: impl Fn(usize, usize) -> f64, g: &Value) -> Result<Value> {
    if u.shape() != g.shape() {
        return Err(EngineError::ShapeMismatch {
            op: "daleckii_krein",
            lhs: u.shape(),
            rhs: g.shape(),
            hint: "the cotangent has the shape of the matrix",
        });
    }
    Ok(match (u, g) {
        (Value::Real(u), Value::Real(g)) => Value::Real(congruence_sym(u, w, g)),
        (Value::Complex(u), Value::Complex(g)) => Value::Complex(congruence_sym(u, w, g)),
        _ => {
            return Err(EngineError::DTypeMismatch {
                op: "daleckii_krein",
                lhs: u.dtype(),
                rhs: g.dtype(),
            })
        }
    })
}

fn second_kernel<T: Scalar>(
    u: &Mat<T>,
    dd2: &dyn Fn(usize, usize, usize) -> f64,
    e: &Mat<T>,
    g: &Mat<T>,
) -> Mat<T> {
    let n = u.nrows();
    let tilde = |x: &Mat<T>| {
        gemm(
            gemm(
                u.as_ref(),
                Form::Adjoint,
                hermitian(x.as_ref()).as_ref(),
                Form::Plain,
            )
            .as_ref(),
            Form::Plain,
            u.as_ref(),
            Form::Plain,
        )
    };
    let (et, gt) = (tilde(e), tilde(g));
    let m = Mat::from_fn(n, n, |i, j| {
        let mut s = T::from_f64(0.0);
        for k in 0..n {
            s += (et[(i, k)] * gt[(k, j)] + gt[(i, k)] * et[(k, j)]) * T::from_f64(dd2(i, k, j));
        }
        s
    });
    let r = gemm(
        gemm(u.as_ref(), Form::Plain, m.as_ref(), Form::Plain).as_ref(),
        Form::Plain,
        u.as_ref(),
        Form::Adjoint,
    );
    hermitian(r.as_ref())
}

/// The second Fréchet derivative in the eigenbasis:
/// `U [Σ_k f[λᵢ, λₖ, λⱼ] (Ẽᵢₖ G̃ₖⱼ + G̃ᵢₖ Ẽₖⱼ)]ᵢⱼ Uᴴ` with `Ẽ = Uᴴ sym(E) U`, `G̃ = Uᴴ sym(G) U`.
/// O(n³) scalar work besides six GEMMs.
///
/// # Errors
/// dtype or shape mismatch.
pub fn second_congruence(
    u: &Value,
    dd2: &dyn Fn(usize, usize, usize) -> f64,
    e: &Value,
    g: &Value,
) -> Result<Value> {
    Ok(match (u, e, g) {
        (Value::Real(u), Value::Real(e), Value::Real(g)) => {
            Value::Real(second_kernel(u, dd2, e, g))
        }
        (Value::Complex(u), Value::Complex(e), Value::Complex(g)) => {
            Value::Complex(second_kernel(u, dd2, e, g))
        }
        _ => {
            return Err(EngineError::DTypeMismatch {
                op: "daleckii_krein",
                lhs: u.dtype(),
                rhs: g.dtype(),
            })
        }
    })
}

/// `U diag(f(λ)) Uᴴ`.
pub fn reconstruct(eig: &SymEig, f: impl Fn(usize) -> f64) -> Value {
    fn imp<T: Scalar>(u: &Mat<T>, d: &[f64]) -> Mat<T> {
        let n = u.nrows();
        let mut out = matgrad_engine::pool::for_overwrite::<T>(n, n);
        reconstruct_into(u, d, out.as_mut());
        out
    }
    let d: Vec<f64> = (0..eig.lambda.len()).map(f).collect();
    match &eig.u {
        Value::Real(u) => Value::Real(imp(u, &d)),
        Value::Complex(u) => Value::Complex(imp(u, &d)),
    }
}

/// `U diag(d) Uᴴ` written into `out` (n×n; every entry is written). Crate-internal: it
/// trusts its caller for the shapes (`d` of length n, `out` n×n; faer asserts them).
pub(crate) fn reconstruct_into<T: Scalar>(u: &Mat<T>, d: &[f64], out: faer::MatMut<'_, T>) {
    let n = u.nrows();
    let ud = from_cols(n, n, |j, out| {
        let dj = T::from_f64(d[j]);
        for (o, &x) in out.iter_mut().zip(u.col_as_slice(j)) {
            *o = x * dj;
        }
    });
    // (U D) Uᴴ is Hermitian: the lower triangle only, mirrored (exactly Hermitian)
    hermitian_product_into(out, ud.as_ref(), u.as_ref(), Form::Adjoint);
    give(ud);
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{complex_matrix, real_matrix};

    /// Both paths of `hermitian_product` (full product below `TRIANGULAR_MIN_N`, lower
    /// triangle from it on) equal `Y Uᴴ` for `Y = U W` with Hermitian W, and
    /// `hermitian_product_form(X, U, Plain)` equals `X U` for `X = Uᴴ W`; real and complex,
    /// each result exactly Hermitian.
    #[test]
    fn hermitian_product_both_paths() {
        fn check<T: Scalar>(u: &Mat<T>, w0: &Mat<T>) {
            let n = u.nrows();
            let w = Mat::from_fn(n, n, |i, j| w0[(i, j)] + w0[(j, i)].cj());
            let y = gemm(u.as_ref(), Form::Plain, w.as_ref(), Form::Plain);
            let x = gemm(u.as_ref(), Form::Adjoint, w.as_ref(), Form::Plain);
            compare(
                &hermitian_product(y.as_ref(), u.as_ref()),
                &gemm(y.as_ref(), Form::Plain, u.as_ref(), Form::Adjoint),
            );
            compare(
                &hermitian_product_form(x.as_ref(), u.as_ref(), Form::Plain),
                &gemm(x.as_ref(), Form::Plain, u.as_ref(), Form::Plain),
            );
        }
        fn compare<T: Scalar>(got: &Mat<T>, want: &Mat<T>) {
            let n = got.nrows();
            let scale = (0..n)
                .flat_map(|j| (0..n).map(move |i| (i, j)))
                .fold(0.0f64, |m, (i, j)| m.max(want[(i, j)].modulus()));
            for j in 0..n {
                for i in 0..n {
                    assert!(
                        (got[(i, j)] - want[(i, j)]).modulus() <= 1e-13 * scale,
                        "n = {n} ({i}, {j})"
                    );
                    assert!(got[(i, j)] == got[(j, i)].cj(), "n = {n} not Hermitian");
                }
            }
        }
        for n in [1, 3, TRIANGULAR_MIN_N - 1, TRIANGULAR_MIN_N, 40] {
            let (ur, wr) = (real_matrix(n, n, 1), real_matrix(n, n, 2));
            check(ur.as_real().unwrap(), wr.as_real().unwrap());
            let (uc, wc) = (complex_matrix(n, n, 3), complex_matrix(n, n, 4));
            check(uc.as_complex().unwrap(), wc.as_complex().unwrap());
        }
    }
}
