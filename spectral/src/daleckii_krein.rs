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
//! reverse-over-reverse and forward-over-reverse work; a sweep that is not recorded
//! computes the same first-order map on values, without the `Dk1` node (its scan and its
//! constant cotangent node). Third order is not implemented.
//!
//! References: Daleckii & Krein (1965); Higham, *Functions of Matrices* (2008), §3.2;
//! Bhatia, *Matrix Analysis* (1997), §V.3 (second divided differences). Derivation:
//! docs/math/daleckii_krein.md.

use std::rc::Rc;

use matgrad_engine::{Ct, EngineError, Op, OpCtx, Result as EResult, Value, Var};

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
    fn has_values_rule(&self) -> bool {
        true
    }
    /// The first-order rule on values (a sweep that is not recorded): the same
    /// `fam.first` as the `Dk1` node [`Op::vjp`] records, without the node, so the two give
    /// the same bits (tested with every family).
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> EResult<bool> {
        let g = match &ct[0] {
            Some(g) if ctx.needs_grad(0) => g,
            _ => {
                out.push(None);
                return Ok(true);
            }
        };
        // no bound is proved: the sweep scans the result
        out.push(Some(Ct::new(self.fam.first(&g.value)?, f64::INFINITY)));
        Ok(true)
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

#[cfg(test)]
mod tests {
    use matgrad_engine::testing::{
        complex_matrix, hermitian_from_seed, real_matrix, spd_from_seed, symmetric_from_seed,
    };
    use matgrad_engine::{DType, Tape, Value, Var};

    use crate::divided::SymFn;

    type Build = for<'t> fn(Var<'t>) -> crate::Result<Var<'t>>;

    fn bits(v: &Value) -> Vec<(u64, u64)> {
        match v {
            Value::Real(m) => m
                .col_iter()
                .flat_map(|c| c.iter().map(|x| (x.to_bits(), 0)).collect::<Vec<_>>())
                .collect(),
            Value::Complex(m) => m
                .col_iter()
                .flat_map(|c| {
                    c.iter()
                        .map(|z| (z.re.to_bits(), z.im.to_bits()))
                        .collect::<Vec<_>>()
                })
                .collect(),
        }
    }

    /// The value rule (`vjp_values`, taken by an unrecorded `vjp`) and the node rule (the
    /// `Dk1` node a recorded `vjp_graph` puts on the tape) give the same bits, with a
    /// cotangent that is not symmetric (the rules read its symmetric part).
    fn value_and_node_rules_agree(name: &str, f: Build, x: &Value) {
        let run = |recorded: bool| -> Value {
            let t = Tape::new();
            let a = t.leaf(x.clone()).unwrap();
            let y = f(a).unwrap();
            let (m, n) = y.shape();
            let ct = match y.dtype() {
                DType::F64 => real_matrix(m, n, 41),
                DType::C64 => complex_matrix(m, n, 41),
            };
            if recorded {
                let c = t.constant(ct).unwrap();
                t.vjp_graph(&[y], &[c], &[a]).unwrap()[0].value()
            } else {
                t.vjp(&[y], &[ct], &[a]).unwrap().remove(0)
            }
        };
        let (fast, slow) = (run(false), run(true));
        assert_eq!(fast.shape(), slow.shape(), "{name}");
        assert!(bits(&fast) == bits(&slow), "{name}: {fast:?}\nvs\n{slow:?}");
    }

    #[test]
    fn value_rules_equal_node_rules() {
        let spd = spd_from_seed(5, 20.0, 3);
        let tied = symmetric_from_seed(&[0.5, 0.5, 2.0, 2.0, 2.0], 4);
        let herm = hermitian_from_seed(&[0.3, 1.0, 1.0, 4.0], 5);
        let cases: [(&str, Build); 4] = [
            ("logm", crate::logm_sym),
            ("sqrtm", crate::sqrtm_sym),
            ("expm", crate::expm_sym),
            ("powm 1.5", |a| crate::powm_sym(a, 1.5)),
        ];
        for (name, f) in cases {
            for x in [&spd, &tied, &herm] {
                value_and_node_rules_agree(name, f, x);
            }
        }
        // the projector onto the two smallest: a cut at a gap of each input
        let herm_gap = hermitian_from_seed(&[0.3, 0.4, 1.0, 1.0], 7);
        for x in [&spd, &tied, &herm_gap] {
            value_and_node_rules_agree(
                "projector",
                |a| crate::eigh_projector(a, 2, crate::projector::Which::Smallest),
                x,
            );
        }
        // the batched op: 3 blocks, serial (a test thread is outside rayon's pool)
        let blocks = [&spd, &tied, &spd_from_seed(5, 3.0, 6)];
        let stack = |bs: &[&Value]| {
            let n = bs[0].ncols();
            Value::Real(faer::Mat::from_fn(bs.len() * n, n, |i, j| {
                bs[i / n].as_real().unwrap()[(i % n, j)]
            }))
        };
        let batched: [(&str, Build); 2] = [
            ("batched logm", |a| {
                crate::batched::matrix_function_sym_batched(a, 5, SymFn::Log)
            }),
            ("batched pow", |a| {
                crate::batched::matrix_function_sym_batched(a, 5, SymFn::Pow(0.5))
            }),
        ];
        for (name, f) in batched {
            value_and_node_rules_agree(name, f, &stack(&blocks));
        }
        let hb = hermitian_from_seed(&[0.2, 0.9, 3.0, 3.0, 7.0], 8);
        let (h0, h1) = (
            herm_block(&hb),
            herm_block(&hermitian_from_seed(&[1.0; 5], 9)),
        );
        let cstack = Value::Complex(faer::Mat::from_fn(10, 5, |i, j| {
            if i < 5 {
                h0[(i, j)]
            } else {
                h1[(i - 5, j)]
            }
        }));
        value_and_node_rules_agree("batched logm, complex", batched[0].1, &cstack);
    }

    fn herm_block(v: &Value) -> faer::Mat<matgrad_engine::C64> {
        v.as_complex().unwrap().clone()
    }

    /// The same on the parallel path of the batch (a worker of rayon's pool, a batch large
    /// enough for `par::blocks_parallel`), where each block's result is written into its
    /// rows of the stack by another thread.
    #[test]
    fn batched_value_rule_equals_node_rule_in_parallel() {
        matgrad_engine::par::in_pool(|| {
            let (batch, n) = (20, 24);
            let blocks: Vec<Value> = (0..batch)
                .map(|k| spd_from_seed(n, 30.0, 200 + k as u64))
                .collect();
            let x = Value::Real(faer::Mat::from_fn(batch * n, n, |i, j| {
                blocks[i / n].as_real().unwrap()[(i % n, j)]
            }));
            value_and_node_rules_agree(
                "batched logm, parallel",
                |a| crate::batched::matrix_function_sym_batched(a, 24, SymFn::Log),
                &x,
            );
        });
    }
}
