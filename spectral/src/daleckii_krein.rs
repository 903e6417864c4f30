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

use matgrad_engine::{EngineError, Op, OpCtx, Result as EResult, Var};

use crate::divided::DividedDifferences;
use crate::sym_eig::{second_congruence, weighted_congruence, SymEig};

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

/// `A ↦ f(A)`: the forward node of a matrix function or projector.
pub(crate) struct MatFn {
    pub shared: Rc<Shared>,
}

struct Dk1 {
    shared: Rc<Shared>,
}

struct Dk2 {
    shared: Rc<Shared>,
}

fn engine_err(op: &'static str, e: crate::SpectralError) -> EngineError {
    e.into_engine(op)
}

pub(crate) fn dk1<'t>(shared: &Rc<Shared>, a: Var<'t>, g: Var<'t>) -> EResult<Var<'t>> {
    let op = shared.dd.op_name();
    let n = shared.eig.lambda.len();
    let w = shared
        .loewner
        .get_or_init(|| shared.dd.loewner(&shared.eig.lambda));
    let out = g
        .with_value(|gv| weighted_congruence(&shared.eig.u, |i, j| w[i * n + j], gv))
        .map_err(|e| engine_err(op, e))?;
    a.tape().record1(
        Rc::new(Dk1 {
            shared: shared.clone(),
        }),
        &[a, g],
        out,
    )
}

fn dk2<'t>(shared: &Rc<Shared>, a: Var<'t>, e: Var<'t>, g: Var<'t>) -> EResult<Var<'t>> {
    let op = shared.dd.op_name();
    if !shared.dd.has_second() {
        return Err(EngineError::Op {
            op,
            message: "second-order derivatives of a user matrix function need f″; pass it to matrix_function_sym".into(),
        });
    }
    let lam = &shared.eig.lambda;
    let dd = &shared.dd;
    let w = |i: usize, k: usize, j: usize| dd.dd2(lam, i, k, j).unwrap_or(f64::NAN);
    let ev = e.value();
    let out = g
        .with_value(|gv| second_congruence(&shared.eig.u, &w, &ev, gv))
        .map_err(|err| engine_err(op, err))?;
    a.tape().record1(
        Rc::new(Dk2 {
            shared: shared.clone(),
        }),
        &[a, e, g],
        out,
    )
}

impl Op for MatFn {
    fn name(&self) -> &'static str {
        self.shared.dd.op_name()
    }
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        ct: &[Option<Var<'t>>],
    ) -> EResult<Vec<Option<Var<'t>>>> {
        Ok(vec![ct[0]
            .map(|g| dk1(&self.shared, ctx.input(0), g))
            .transpose()?])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Ok(vec![t[0]
            .map(|d| dk1(&self.shared, ctx.input(0), d))
            .transpose()?])
    }
}

impl Op for Dk1 {
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
            Some(dk2(&self.shared, a, h, g)?)
        } else {
            None
        };
        let gg = if ctx.needs_grad(1) {
            Some(dk1(&self.shared, a, h)?)
        } else {
            None
        };
        Ok(vec![ga, gg])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        let (a, g) = (ctx.input(0), ctx.input(1));
        let from_g = t[1].map(|dg| dk1(&self.shared, a, dg)).transpose()?;
        let from_a = t[0].map(|da| dk2(&self.shared, a, da, g)).transpose()?;
        Ok(vec![match (from_g, from_a) {
            (Some(x), Some(y)) => Some(x.add(y)?),
            (x, None) => x,
            (None, y) => y,
        }])
    }
}

impl Op for Dk2 {
    fn name(&self) -> &'static str {
        "daleckii_krein_second"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, _: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Err(EngineError::Op {
            op: self.shared.dd.op_name(),
            message: "third-order derivatives of matrix functions are not implemented".into(),
        })
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, _: &[Option<Var<'t>>]) -> EResult<Vec<Option<Var<'t>>>> {
        Err(EngineError::Op {
            op: self.shared.dd.op_name(),
            message: "third-order derivatives of matrix functions are not implemented".into(),
        })
    }
}
