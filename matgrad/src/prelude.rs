//! One calling style for every op: `use matgrad::prelude::*;` and every op is a method on
//! [`Var`] — the engine's own (`a.matmul(b)?`, `a.cholesky()?`), the spectral ops through
//! [`SpectralOps`] (`a.eigh()?`, `a.logm_sym()?`, `a.svd()?`) and the layers through
//! [`LayerOps`] (`f.o2p(1e-3)?`, `f.ncut_projector()?`). The free functions
//! (`matgrad::spectral::eigh(a)`) remain; the methods call them.
//!
//! ```
//! use matgrad::prelude::*;
//! use matgrad::engine::testing::symmetric_from_seed;
//! # fn main() -> Result<()> {
//! let tape = Tape::new();
//! let a = tape.leaf(symmetric_from_seed(&[1.0, 2.0, 4.0], 3))?;
//! let (lambda, u) = a.eigh()?;
//! let y = a.logm_sym()?.trace()?.add(lambda.sum(Axis::All)?)?;
//! let g = tape.grad(y, &[a])?;
//! assert_eq!((g[0].shape(), u.shape()), ((3, 3), (3, 3)));
//! # Ok(()) }
//! ```
//!
//! Ops on symmetric/Hermitian matrices (everything named `…_sym`, `eigh`, `eigvalsh`,
//! `eigh_projector`) check that the input is Hermitian to a relative `1e-10`
//! ([`HERMITIAN_RTOL`]), decompose `sym(A) = (A + Aᴴ)/2`, and their VJP is the Hermitian
//! gradient of `A ↦ f(sym A)`. To differentiate through a matrix that is symmetric only up
//! to larger errors, symmetrize it first (`a.sym()?`); to check such an op with
//! [`check`](crate::engine::check::check), give its input `Domain::Hermitian`.

pub use crate::engine::check::{check, CheckOptions, Domain, Tolerance};
pub use crate::engine::{
    Axis, DType, Error, Form, GradMode, Op, OpCtx, Result, Tape, Value, Var, C64, HERMITIAN_RTOL,
};
pub use crate::faer;
pub use crate::functional::{grad, hessian, hvp, jacobian, jvp, vjp};
pub use crate::spectral::{DegeneracyPolicy, EighOptions, SymFn, Which};

use crate::{layers, spectral};

/// The spectral ops as methods on [`Var`] (see the functions of the same name in
/// [`matgrad::spectral`](crate::spectral) for their contracts and errors).
pub trait SpectralOps<'t>: Sized {
    /// Eigenvalues (ascending, n×1) and eigenvectors of sym(A): [`spectral::eigh`].
    ///
    /// # Errors
    /// As [`spectral::eigh`].
    fn eigh(self) -> Result<(Var<'t>, Var<'t>)>;
    /// [`SpectralOps::eigh`] with a degeneracy policy: [`spectral::eigh_with`].
    ///
    /// # Errors
    /// As [`spectral::eigh_with`].
    fn eigh_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>)>;
    /// Eigenvalues of sym(A), ascending: [`spectral::eigvalsh`].
    ///
    /// # Errors
    /// As [`spectral::eigvalsh`].
    fn eigvalsh(self) -> Result<Var<'t>>;
    /// Thin SVD (U, S, V): [`spectral::svd`].
    ///
    /// # Errors
    /// As [`spectral::svd`].
    fn svd(self) -> Result<(Var<'t>, Var<'t>, Var<'t>)>;
    /// Thin SVD with a degeneracy policy: [`spectral::svd_with`].
    ///
    /// # Errors
    /// As [`spectral::svd_with`].
    fn svd_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>, Var<'t>)>;
    /// Full SVD: [`spectral::svd_full`].
    ///
    /// # Errors
    /// As [`spectral::svd_full`].
    fn svd_full(self) -> Result<(Var<'t>, Var<'t>, Var<'t>)>;
    /// Singular values, descending: [`spectral::svdvals`].
    ///
    /// # Errors
    /// As [`spectral::svdvals`].
    fn svdvals(self) -> Result<Var<'t>>;
    /// Eigenvalues and eigenvectors of a general square A: [`spectral::eig`].
    ///
    /// # Errors
    /// As [`spectral::eig`].
    fn eig(self) -> Result<(Var<'t>, Var<'t>)>;
    /// [`SpectralOps::eig`] with a degeneracy policy: [`spectral::eig_with`].
    ///
    /// # Errors
    /// As [`spectral::eig_with`].
    fn eig_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>)>;
    /// Eigenvalues of a general square A: [`spectral::eigvals`].
    ///
    /// # Errors
    /// As [`spectral::eigvals`].
    fn eigvals(self) -> Result<Var<'t>>;
    /// Principal log of sym(A), positive definite: [`spectral::logm_sym`].
    ///
    /// # Errors
    /// As [`spectral::logm_sym`].
    fn logm_sym(self) -> Result<Var<'t>>;
    /// Principal square root of sym(A): [`spectral::sqrtm_sym`].
    ///
    /// # Errors
    /// As [`spectral::sqrtm_sym`].
    fn sqrtm_sym(self) -> Result<Var<'t>>;
    /// Exponential of sym(A): [`spectral::expm_sym`].
    ///
    /// # Errors
    /// As [`spectral::expm_sym`].
    fn expm_sym(self) -> Result<Var<'t>>;
    /// sym(A)ᵖ: [`spectral::powm_sym`].
    ///
    /// # Errors
    /// As [`spectral::powm_sym`].
    fn powm_sym(self, p: f64) -> Result<Var<'t>>;
    /// f(sym(A)) for a scalar function with its derivatives: [`spectral::matrix_function_sym`].
    ///
    /// # Errors
    /// As [`spectral::matrix_function_sym`].
    fn matrix_function_sym(self, f: SymFn) -> Result<Var<'t>>;
    /// Projector onto the eigenspace of the k smallest/largest eigenvalues of sym(A):
    /// [`spectral::eigh_projector`].
    ///
    /// # Errors
    /// As [`spectral::eigh_projector`].
    fn eigh_projector(self, k: usize, which: Which) -> Result<Var<'t>>;
    /// Exponential of a general square A: [`spectral::expm`].
    ///
    /// # Errors
    /// As [`spectral::expm`].
    fn expm(self) -> Result<Var<'t>>;
    /// Principal log of a general square A: [`spectral::logm`].
    ///
    /// # Errors
    /// As [`spectral::logm`].
    fn logm(self) -> Result<Var<'t>>;
    /// Principal square root of a general square A: [`spectral::sqrtm`].
    ///
    /// # Errors
    /// As [`spectral::sqrtm`].
    fn sqrtm(self) -> Result<Var<'t>>;
    /// Projector onto the column space and `Z⁺ᴴ`, by QR: [`spectral::range_projector`].
    ///
    /// # Errors
    /// As [`spectral::range_projector`].
    fn range_projector(self) -> Result<(Var<'t>, Var<'t>)>;
    /// Orthonormal basis of the orthogonal complement: [`spectral::orthogonal_complement`].
    ///
    /// # Errors
    /// As [`spectral::orthogonal_complement`].
    fn orthogonal_complement(self) -> Result<Var<'t>>;
}

impl<'t> SpectralOps<'t> for Var<'t> {
    fn eigh(self) -> Result<(Var<'t>, Var<'t>)> {
        spectral::eigh(self)
    }
    fn eigh_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>)> {
        spectral::eigh_with(self, opts)
    }
    fn eigvalsh(self) -> Result<Var<'t>> {
        spectral::eigvalsh(self)
    }
    fn svd(self) -> Result<(Var<'t>, Var<'t>, Var<'t>)> {
        spectral::svd(self)
    }
    fn svd_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>, Var<'t>)> {
        spectral::svd_with(self, opts)
    }
    fn svd_full(self) -> Result<(Var<'t>, Var<'t>, Var<'t>)> {
        spectral::svd_full(self)
    }
    fn svdvals(self) -> Result<Var<'t>> {
        spectral::svdvals(self)
    }
    fn eig(self) -> Result<(Var<'t>, Var<'t>)> {
        spectral::eig(self)
    }
    fn eig_with(self, opts: EighOptions) -> Result<(Var<'t>, Var<'t>)> {
        spectral::eig_with(self, opts)
    }
    fn eigvals(self) -> Result<Var<'t>> {
        spectral::eigvals(self)
    }
    fn logm_sym(self) -> Result<Var<'t>> {
        spectral::logm_sym(self)
    }
    fn sqrtm_sym(self) -> Result<Var<'t>> {
        spectral::sqrtm_sym(self)
    }
    fn expm_sym(self) -> Result<Var<'t>> {
        spectral::expm_sym(self)
    }
    fn powm_sym(self, p: f64) -> Result<Var<'t>> {
        spectral::powm_sym(self, p)
    }
    fn matrix_function_sym(self, f: SymFn) -> Result<Var<'t>> {
        spectral::matrix_function_sym(self, f)
    }
    fn eigh_projector(self, k: usize, which: Which) -> Result<Var<'t>> {
        spectral::eigh_projector(self, k, which)
    }
    fn expm(self) -> Result<Var<'t>> {
        spectral::expm(self)
    }
    fn logm(self) -> Result<Var<'t>> {
        spectral::logm(self)
    }
    fn sqrtm(self) -> Result<Var<'t>> {
        spectral::sqrtm(self)
    }
    fn range_projector(self) -> Result<(Var<'t>, Var<'t>)> {
        spectral::range_projector(self)
    }
    fn orthogonal_complement(self) -> Result<Var<'t>> {
        spectral::orthogonal_complement(self)
    }
}

/// The layers as methods on [`Var`] (see [`matgrad::layers`](crate::layers)).
pub trait LayerOps<'t>: Sized {
    /// Log-Euclidean second-order pooling of an m×d feature matrix: [`layers::o2p`].
    ///
    /// # Errors
    /// As [`layers::o2p`].
    fn o2p(self, eps: f64) -> Result<Var<'t>>;
    /// The normalized-cuts projector of an n×d nonnegative feature matrix:
    /// [`layers::ncut_projector`].
    ///
    /// # Errors
    /// As [`layers::ncut_projector`].
    fn ncut_projector(self) -> Result<Var<'t>>;
}

impl<'t> LayerOps<'t> for Var<'t> {
    fn o2p(self, eps: f64) -> Result<Var<'t>> {
        layers::o2p(self, eps)
    }
    fn ncut_projector(self) -> Result<Var<'t>> {
        layers::ncut_projector(self)
    }
}
