//! The Daleckii–Krein rules shared by every function of a symmetric/Hermitian matrix and
//! by the spectral projectors.
//!
//! For `Y = f(A) = U f(Λ) Uᴴ` (A Hermitian, `A = U Λ Uᴴ`):
//! - tangent: `Ẏ = U (F¹ ∘ Uᴴ Ȧ U) Uᴴ` with the Loewner matrix `F¹ᵢⱼ = f[λᵢ, λⱼ]`
//!   (`F¹ᵢᵢ = f′(λᵢ)`);
//! - adjoint: the map is self-adjoint, so `Ā = U (F¹ ∘ Uᴴ sym(Ȳ) U) Uᴴ`;
//! - second order: `D²f(A)(E, G) = U [Σₖ f[λᵢ, λₖ, λⱼ](Ẽᵢₖ G̃ₖⱼ + G̃ᵢₖ Ẽₖⱼ)]ᵢⱼ Uᴴ`, and
//!   `⟨H, D²f(A)(E, G)⟩` is symmetric in (H, E, G), so the adjoint of the first-order
//!   rule with respect to A is again `D²f(A)(H, G)`.
//!
//! Both formulas are exact at repeated eigenvalues (divided differences have limits
//! there), which is where composing `eigh` rules gives NaN. The ops here are `Dk1`
//! (`(A, G) ↦ L_f(A)[G]`) and `Dk2` (`(A, E, G) ↦ D²f(A)(E, G)`); the first-order rule of
//! every matrix function records a `Dk1` node, whose own rules record `Dk2` nodes, so
//! reverse-over-reverse and forward-over-reverse work. Third order is not implemented.
//!
//! References: Daleckii & Krein (1965); Higham, *Functions of Matrices* (2008), §3.2;
//! Bhatia, *Matrix Analysis* (1997), §V.3 (second divided differences). Derivation:
//! docs/math/daleckii_krein.md.

use std::rc::Rc;

use matgrad_engine::{EngineError, Op, OpCtx, Result as EResult, Value, Var};

use crate::divided::DividedDifferences;
use crate::sym_eig::{second_congruence, weighted_congruence, SymEig};

/// What the rules of one matrix function (or a batch of them) need: the first-order map
/// `G ↦ L_f(A)[sym G]` and the second-order map `(E, G) ↦ D²f(A)(sym E, sym G)`, both on
/// values. [`Shared`] implements it for one matrix, `batched::Batch` for a stack.
pub(crate) trait DkFamily: 'static {
    /// The op's name, for errors.
    fn op_name(&self) -> &'static str;
    /// `L_f(A)[sym G]`.
    fn first(&self, g: &Value) -> crate::Result<Value>;
    /// `D²f(A)(sym E, sym G)`.
    fn second(&self, e: &Value, g: &Value) -> crate::Result<Value>;
}

/// What every node of one matrix function shares: the eigendecomposition of `sym(A)` and
/// the divided differences of `f` at its eigenvalues.
pub(crate) struct Shared {
    pub eig: SymEig,
    pub dd: Rc<dyn DividedDifferences>,
    /// The Loewner matrix, computed on first use and shared by every rule of this node.
    pub loewner: std::cell::OnceCell<Vec<f64>>,
}

impl Shared {
    pub fn new(eig: SymEig, dd: Rc<dyn DividedDifferences>) -> Self {
        Shared {
            eig,
            dd,
            loewner: std::cell::OnceCell::new(),
        }
    }
}

impl DkFamily for Shared {
    fn op_name(&self) -> &'static str {
        self.dd.op_name()
    }
    fn first(&self, g: &Value) -> crate::Result<Value> {
        let n = self.eig.lambda.len();
        let w = self
            .loewner
            .get_or_init(|| self.dd.loewner(&self.eig.lambda));
        weighted_congruence(&self.eig.u, |i, j| w[i * n + j], g)
    }
    fn second(&self, e: &Value, g: &Value) -> crate::Result<Value> {
        if !self.dd.has_second() {
            return Err(crate::SpectralError::Unsupported {
                op: self.op_name(),
                message: "second-order derivatives of a user matrix function need f″; pass it to matrix_function_sym".into(),
            });
        }
        let (lam, dd) = (&self.eig.lambda, &self.dd);
        let w = |i: usize, k: usize, j: usize| dd.dd2(lam, i, k, j).unwrap_or(f64::NAN);
        second_congruence(&self.eig.u, &w, e, g)
    }
}

/// `A ↦ f(A)`: the forward node of a matrix function, projector, or batch of them.
pub(crate) struct MatFn<F: DkFamily> {
    pub fam: Rc<F>,
}

struct Dk1<F: DkFamily> {
    fam: Rc<F>,
}

struct Dk2<F: DkFamily> {
    fam: Rc<F>,
}

pub(crate) fn dk1<'t, F: DkFamily>(fam: &Rc<F>, a: Var<'t>, g: Var<'t>) -> EResult<Var<'t>> {
    let out = g.with_value(|gv| fam.first(gv))?;
    a.tape()
        .record1(Rc::new(Dk1 { fam: fam.clone() }), &[a, g], out)
}

fn dk2<'t, F: DkFamily>(fam: &Rc<F>, a: Var<'t>, e: Var<'t>, g: Var<'t>) -> EResult<Var<'t>> {
    let ev = e.value_rc();
    let out = g.with_value(|gv| fam.second(&ev, gv))?;
    a.tape()
        .record1(Rc::new(Dk2 { fam: fam.clone() }), &[a, e, g], out)
}

impl<F: DkFamily> Op for MatFn<F> {
    fn name(&self) -> &'static str {
        self.fam.op_name()
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| dk1(&self.fam, ctx.input(0), g))
            .transpose()?])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]
            .map(|d| dk1(&self.fam, ctx.input(0), d))
            .transpose()?])
    }
}

impl<F: DkFamily> Op for Dk1<F> {
    fn name(&self) -> &'static str {
        "daleckii_krein"
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        let Some(h) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (a, g) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            Some(dk2(&self.fam, a, h, g)?)
        } else {
            None
        };
        let gg = if ctx.needs_grad(1) {
            Some(dk1(&self.fam, a, h)?)
        } else {
            None
        };
        Ok(vec![ga, gg])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let (a, g) = (ctx.input(0), ctx.input(1));
        let from_g = t[1].map(|dg| dk1(&self.fam, a, dg)).transpose()?;
        let from_a = t[0].map(|da| dk2(&self.fam, a, da, g)).transpose()?;
        Ok(vec![match (from_g, from_a) {
            (Some(x), Some(y)) => Some(x.add(y)?),
            (x, None) => x,
            (None, y) => y,
        }])
    }
}

impl<F: DkFamily> Op for Dk2<F> {
    fn name(&self) -> &'static str {
        "daleckii_krein_second"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, _: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Err(EngineError::Op {
            op: self.fam.op_name(),
            message: "third-order derivatives of matrix functions are not implemented".into(),
        })
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, _: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Err(EngineError::Op {
            op: self.fam.op_name(),
            message: "third-order derivatives of matrix functions are not implemented".into(),
        })
    }
}
