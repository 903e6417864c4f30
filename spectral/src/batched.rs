//! `matrix_function_sym_batched`: one node applying a built-in symmetric matrix function
//! (log, exp, sqrt, power) to each n×n block of a vertical stack of b Hermitian blocks,
//! `[A₁; A₂; …; A_b]` ((b·n)×n), in parallel over the blocks (rayon). For second-order
//! pooling over many regions, where per-block nodes would cost more than the blocks.
//!
//! The rules are the Daleckii–Krein rules of [`crate::daleckii_krein`] applied block by
//! block (each block's cotangent only reaches its own block): a batched first-order node
//! and a batched second-order node, so first and second order are exact at ties, as for
//! the single-matrix op. Eigendecompositions and congruences run in parallel; the divided
//! differences (cheap, O(n²) per block, O(n³) for second order) are tabulated first.
//! User functions are not offered here (their closures are not thread-safe).

use std::rc::Rc;
use std::sync::Arc;

use matgrad_engine::{par, pool, Scalar, Value, Var};

use crate::daleckii_krein::{DkFamily, MatFn};
use rayon::prelude::*;

use crate::divided::SymFn;
use crate::error::{Result, SpectralError};
use crate::sym_eig::{congruence_sym_into, decompose, reconstruct_into, second_congruence, SymEig};

struct Block {
    eig: SymEig,
    /// Loewner matrix, row-major n×n.
    f1: Vec<f64>,
}

/// The built-in functions as plain data (Send + Sync), for the workers.
#[derive(Clone, Copy)]
enum Builtin {
    Log,
    Exp,
    Sqrt,
    Pow(f64),
}

impl Builtin {
    /// `None` for a user function.
    fn of(f: &SymFn) -> Option<Builtin> {
        match f {
            SymFn::Log => Some(Builtin::Log),
            SymFn::Exp => Some(Builtin::Exp),
            SymFn::Sqrt => Some(Builtin::Sqrt),
            SymFn::Pow(p) => Some(Builtin::Pow(*p)),
            SymFn::Custom { .. } => None,
        }
    }
    fn sym_fn(self) -> SymFn {
        match self {
            Builtin::Log => SymFn::Log,
            Builtin::Exp => SymFn::Exp,
            Builtin::Sqrt => SymFn::Sqrt,
            Builtin::Pow(p) => SymFn::Pow(p),
        }
    }
}

struct Batch {
    f: SymFn,
    n: usize,
    blocks: Vec<Arc<Block>>,
    /// Second divided differences per block (n³, row-major over (i, k, j)), on first use.
    f2: std::cell::OnceCell<Vec<Arc<Vec<f64>>>>,
}

impl Drop for Batch {
    /// The eigenvector matrices go back to this thread's pool (a batch is dropped with its
    /// tape), for the next call's decompositions.
    fn drop(&mut self) {
        for b in self.blocks.drain(..) {
            if let Ok(b) = Arc::try_unwrap(b) {
                pool::give_value(b.eig.u);
            }
        }
    }
}

// SymEig holds faer matrices, which are Send + Sync.
fn split(v: &Value, n: usize) -> Vec<Value> {
    let b = v.nrows() / n;
    (0..b)
        .map(|k| match v {
            Value::Real(m) => Value::Real(pool::owned(m.as_ref().submatrix(k * n, 0, n, n))),
            Value::Complex(m) => Value::Complex(pool::owned(m.as_ref().submatrix(k * n, 0, n, n))),
        })
        .collect()
}

/// Gives the per-block copies and results back to this thread's pool, so that the next
/// call's blocks reuse their buffers instead of allocating and zero-filling new ones.
fn give_all(parts: Vec<Value>) {
    parts.into_iter().for_each(pool::give_value);
}

fn stack(parts: Vec<Value>, dtype: matgrad_engine::DType, n: usize) -> Value {
    let rows: usize = parts.iter().map(Value::nrows).sum();
    match dtype {
        matgrad_engine::DType::F64 => {
            let mut out = matgrad_engine::pool::for_overwrite::<f64>(rows, n); // every block copied in
            for (k, p) in parts.iter().enumerate() {
                out.as_mut()
                    .submatrix_mut(k * n, 0, n, n)
                    .copy_from(p.as_real().expect("same dtype").as_ref());
            }
            give_all(parts);
            Value::Real(out)
        }
        matgrad_engine::DType::C64 => {
            let mut out = matgrad_engine::pool::for_overwrite::<matgrad_engine::C64>(rows, n);
            for (k, p) in parts.iter().enumerate() {
                out.as_mut()
                    .submatrix_mut(k * n, 0, n, n)
                    .copy_from(p.as_complex().expect("same dtype").as_ref());
            }
            give_all(parts);
            Value::Complex(out)
        }
    }
}

/// `f(k)` for every block `k`, on rayon's threads when [`par::blocks_parallel`] says the
/// batch is worth it (`cost`: one block's work in multiply-add equivalents), in order.
fn per_block<R: Send>(batch: usize, cost: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    if par::blocks_parallel(batch, cost) {
        (0..batch).into_par_iter().map(f).collect()
    } else {
        (0..batch).map(f).collect()
    }
}

/// One block's forward work (eigendecomposition, Loewner matrix, `U f(Λ) Uᴴ`) in
/// multiply-add equivalents: small eigensolvers are far from GEMM speed (faer's 32×32
/// takes ≈ 60 µs, 50·32³ multiply-adds at ≈ 27 GMAC/s), and below n ≈ 13 a block costs a
/// few µs whatever its size (≈ 3 µs at n = 4, 10⁵ multiply-adds).
fn decomposition_cost(n: usize) -> usize {
    (50 * n * n * n).max(100_000)
}

/// One block's weighted congruence `U (W ∘ UᴴGU) Uᴴ` (three n³ products and the
/// elementwise work), with a floor for the per-block overhead.
fn congruence_cost(n: usize) -> usize {
    (4 * n * n * n).max(20_000)
}

impl DkFamily for Batch {
    fn op_name(&self) -> &'static str {
        self.f.name()
    }
    fn first(&self, g: &Value) -> Result<Value> {
        Batch::first(self, g)
    }
    fn second(&self, e: &Value, g: &Value) -> Result<Value> {
        Batch::second(self, e, g)
    }
}

impl Batch {
    fn f2(&self) -> &Vec<Arc<Vec<f64>>> {
        self.f2.get_or_init(|| {
            let n = self.n;
            self.blocks
                .iter()
                .map(|b| {
                    let l = &b.eig.lambda;
                    let mut t = vec![0.0; n * n * n];
                    for i in 0..n {
                        for k in 0..n {
                            for j in 0..n {
                                t[(i * n + k) * n + j] =
                                    self.f.dd2(l[i], l[k], l[j]).unwrap_or(f64::NAN);
                            }
                        }
                    }
                    Arc::new(t)
                })
                .collect()
        })
    }

    /// The first-order rule on the whole stack: each block's `U_b (F¹_b ∘ U_bᴴ sym(G_b) U_b)
    /// U_bᴴ` from its rows of `g` into its rows of the stacked result, everything per block
    /// (the copies in and out included) in parallel over the blocks when the batch is
    /// worth it.
    fn first(&self, g: &Value) -> Result<Value> {
        Ok(match g {
            Value::Real(g) => Value::Real(self.first_blocks(g)?),
            Value::Complex(g) => Value::Complex(self.first_blocks(g)?),
        })
    }

    fn first_blocks<T: Scalar>(&self, g: &faer::Mat<T>) -> Result<faer::Mat<T>> {
        let n = self.n;
        let batch = self.blocks.len();
        if g.shape() != (batch * n, n) {
            return Err(SpectralError::ShapeMismatch {
                op: self.f.name(),
                lhs: (batch * n, n),
                rhs: g.shape(),
                hint: "the cotangent has the shape of the stacked matrix",
            });
        }
        // every block's rows are written by its copy below
        let mut out = pool::for_overwrite::<T>(batch * n, n);
        // (the closure runs on rayon's threads: it takes the blocks, not `self`, whose
        // SymFn is not thread-safe)
        let (blocks, op) = (&self.blocks, self.f.name());
        let work = |k: usize, dst: faer::MatMut<'_, T>| -> Result<()> {
            let b = &blocks[k];
            let u = T::unwrap(&b.eig.u).ok_or(SpectralError::DTypeMismatch {
                op,
                lhs: b.eig.u.dtype(),
                rhs: T::DTYPE,
            })?;
            // The block is copied out and the result copied in, column by column: in a
            // tall stack a block's columns are `batch·n` entries apart, so the transposed
            // reads of `sym(G)` and the mirrored writes of the last product, done in place,
            // fell into a few cache sets and missed (the backward of the O2P batch took
            // 1.1–1.3× as long).
            let gk = pool::copy_view(g.as_ref().subrows(k * n, n));
            let mut r = pool::for_overwrite::<T>(n, n); // written by the congruence
            congruence_sym_into(u, |i, j| b.f1[i * n + j], gk.as_ref(), r.as_mut());
            pool::copy_into(dst, r.as_ref())?;
            pool::give(gk);
            pool::give(r);
            Ok(())
        };
        let done: Vec<Result<()>> = if par::blocks_parallel(batch, congruence_cost(n)) {
            out.as_mut()
                .par_row_chunks_mut(n)
                .enumerate()
                .map(|(k, dst)| work(k, dst))
                .collect()
        } else {
            (0..batch)
                .map(|k| work(k, out.as_mut().subrows_mut(k * n, n)))
                .collect()
        };
        // the first failing block's error, in block order
        done.into_iter().collect::<Result<Vec<()>>>()?;
        Ok(out)
    }

    fn second(&self, e: &Value, g: &Value) -> Result<Value> {
        let n = self.n;
        let (es, gs) = (split(e, n), split(g, n));
        let tables = self.f2().clone();
        let blocks = &self.blocks;
        let out = per_block(blocks.len(), 2 * congruence_cost(n), |k| {
            let t = &tables[k];
            second_congruence(
                &blocks[k].eig.u,
                &|i, l, j| t[(i * n + l) * n + j],
                &es[k],
                &gs[k],
            )
        });
        give_all(es);
        give_all(gs);
        Ok(stack(out.into_iter().collect::<Result<_>>()?, g.dtype(), n))
    }
}

/// Applies `f` (one of the built-in [`SymFn`]s) to each n×n Hermitian block of a
/// (b·n)×n vertical stack, in one node, in parallel over blocks.
///
/// ```
/// use matgrad_engine::{Tape, Var, testing::spd_from_seed};
/// use matgrad_spectral::{matrix_function_sym_batched, SymFn};
/// # fn main() -> Result<(), matgrad_spectral::SpectralError> {
/// let tape = Tape::new();
/// let blocks: Vec<Var> = (0..8).map(|k| tape.leaf(spd_from_seed(3, 10.0, k))).collect::<Result<_, _>>()?;
/// let stacked = Var::vcat(&blocks)?;                       // 24×3
/// let logs = matrix_function_sym_batched(stacked, 3, SymFn::Log)?;
/// assert_eq!(logs.shape(), (24, 3));
/// # Ok(()) }
/// ```
///
/// **Symmetric input.** The input must be Hermitian (symmetric when real) to a relative
/// `1e-10` ([`matgrad_engine::HERMITIAN_RTOL`]), else [`matgrad_engine::Error::NotHermitian`]; the
/// forward pass decomposes `sym(A) = (A + Aᴴ)/2`, and the VJP is the Hermitian gradient of
/// `A ↦ f(sym A)` (so a non-symmetric perturbation direction sees only its symmetric part).
/// Symmetrize first (`a.sym()?`) to accept larger asymmetry; check such an op with
/// `Domain::Hermitian` directions.
///
/// # Errors
/// `n` does not divide the rows or differs from the columns; a user function; any
/// block not Hermitian or outside the function's domain (naming the block).
pub fn matrix_function_sym_batched(stacked: Var<'_>, n: usize, f: SymFn) -> Result<Var<'_>> {
    let op = f.name();
    let Some(builtin) = Builtin::of(&f) else {
        return Err(SpectralError::InvalidArgument {
            op,
            message: "the batched form takes the built-in functions only (Log, Exp, Sqrt, Pow)"
                .into(),
        });
    };
    let (rows, cols) = stacked.shape();
    if n == 0 || cols != n || rows % n != 0 {
        return Err(SpectralError::InvalidArgument {
            op,
            message: format!("a ({rows}×{cols}) stack is not a vertical stack of {n}×{n} blocks"),
        });
    }
    let (blocks, out) = match &*stacked.value_rc() {
        Value::Real(a) => forward_blocks(a, n, op, builtin).map(|(b, o)| (b, Value::Real(o)))?,
        Value::Complex(a) => {
            forward_blocks(a, n, op, builtin).map(|(b, o)| (b, Value::Complex(o)))?
        }
    };
    let batch = Rc::new(Batch {
        f,
        n,
        blocks,
        f2: std::cell::OnceCell::new(),
    });
    stacked
        .tape()
        .record1(Rc::new(MatFn { fam: batch }), &[stacked], out)
}

/// The forward of every block of `a` (a vertical stack of n×n blocks): each block's
/// decomposition, domain check and Loewner matrix, and `f(A_b)` written straight into its
/// rows of the stacked output. Everything per block runs in parallel when the batch is
/// worth it; SymFn is not Send (its Custom variant holds Rcs), so each worker rebuilds the
/// built-in function from a plain copy.
fn forward_blocks<T: Scalar>(
    a: &faer::Mat<T>,
    n: usize,
    op: &'static str,
    builtin: Builtin,
) -> Result<(Vec<Arc<Block>>, faer::Mat<T>)> {
    let batch = a.nrows() / n;
    // every block's rows are written by `reconstruct_into`
    let mut out = pool::for_overwrite::<T>(batch * n, n);
    let mut views = Vec::with_capacity(batch);
    let mut rest = out.as_mut();
    for _ in 0..batch {
        let (head, tail) = rest.split_at_row_mut(n);
        views.push(head);
        rest = tail;
    }
    let work = |k: usize, dst: faer::MatMut<'_, T>| -> Result<Block> {
        let f = builtin.sym_fn();
        let in_block = |err: SpectralError| SpectralError::InvalidArgument {
            op,
            message: format!("block {k}: {err}"),
        };
        let p = T::wrap(pool::owned(a.as_ref().submatrix(k * n, 0, n, n)));
        let eig = decompose(op, &p);
        pool::give_value(p);
        let mut eig = eig.map_err(in_block)?;
        crate::matrix_function::check_domain(&f, &eig.lambda).map_err(in_block)?;
        if matches!(f, SymFn::Sqrt) {
            for l in &mut eig.lambda {
                *l = l.max(0.0);
            }
        }
        let f1 = crate::divided::DividedDifferences::loewner(&f, &eig.lambda);
        let d: Vec<f64> = eig.lambda.iter().map(|&l| f.value(l)).collect();
        let u = T::unwrap(&eig.u).expect("the eigenvectors have the input's dtype");
        reconstruct_into(u, &d, dst);
        Ok(Block { eig, f1 })
    };
    let done: Vec<Result<Block>> = if par::blocks_parallel(batch, decomposition_cost(n)) {
        views
            .into_par_iter()
            .enumerate()
            .map(|(k, v)| work(k, v))
            .collect()
    } else {
        views
            .into_iter()
            .enumerate()
            .map(|(k, v)| work(k, v))
            .collect()
    };
    let blocks = done
        .into_iter()
        .map(|d| d.map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    Ok((blocks, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{
        assert_rules, hermitian_from_seed, spd_from_seed, symmetric_from_seed,
    };
    use matgrad_engine::Tape;

    fn stacked(blocks: &[Value]) -> Value {
        stack(blocks.to_vec(), blocks[0].dtype(), blocks[0].ncols())
    }

    /// A batch large enough for the parallel path of the forward, the first-order adjoint
    /// and the second-order rule (run on a worker thread, where the lower threshold
    /// applies): value, gradient and Hessian-vector product equal the per-block op's.
    #[test]
    fn parallel_batch_equals_the_per_block_op() {
        matgrad_engine::par::in_pool(parallel_batch_on_a_worker);
    }

    fn parallel_batch_on_a_worker() {
        use matgrad_engine::testing::real_matrix;
        let (batch, n) = (20, 24);
        assert!(matgrad_engine::par::blocks_parallel(
            batch,
            congruence_cost(n)
        ));
        let blocks: Vec<Value> = (0..batch)
            .map(|k| spd_from_seed(n, 30.0, 100 + k as u64))
            .collect();
        let (w, v) = (real_matrix(batch * n, n, 1), real_matrix(batch * n, n, 2));
        // y = Σ W ∘ log(S); g = ∂y/∂S; z = Σ g ∘ V; h = ∂z/∂S (the second-order rule)
        let grads = |t: &Tape, s: Var<'_>, y: Var<'_>| {
            let g = t.grad_graph(y, &[s]).unwrap()[0];
            let z = g
                .mul(t.constant(v.clone()).unwrap())
                .unwrap()
                .sum(matgrad_engine::Axis::All)
                .unwrap();
            (g.value(), t.grad(z, &[s]).unwrap().remove(0))
        };
        let t = Tape::new();
        let s = t.leaf(stacked(&blocks)).unwrap();
        let l = matrix_function_sym_batched(s, n, SymFn::Log).unwrap();
        let y = l
            .mul(t.constant(w.clone()).unwrap())
            .unwrap()
            .sum(matgrad_engine::Axis::All)
            .unwrap();
        let (g, h) = grads(&t, s, y);
        for (k, b) in blocks.iter().enumerate() {
            let t2 = Tape::new();
            let x = t2.leaf(b.clone()).unwrap();
            let lk = crate::logm_sym(x).unwrap();
            let wk = t2.constant(split(&w, n).remove(k)).unwrap();
            let yk = lk.mul(wk).unwrap().sum(matgrad_engine::Axis::All).unwrap();
            let gk = t2.grad_graph(yk, &[x]).unwrap()[0];
            let vk = t2.constant(split(&v, n).remove(k)).unwrap();
            let zk = gk.mul(vk).unwrap().sum(matgrad_engine::Axis::All).unwrap();
            let hk = t2.grad(zk, &[x]).unwrap().remove(0);
            assert!(
                split(&l.value(), n)[k].rel_diff(&lk.value()).unwrap() < 1e-13,
                "value {k}"
            );
            assert!(
                split(&g, n)[k].rel_diff(&gk.value()).unwrap() < 1e-13,
                "gradient {k}"
            );
            assert!(split(&h, n)[k].rel_diff(&hk).unwrap() < 1e-12, "hvp {k}");
        }
    }

    #[test]
    fn forward_and_gradient_equal_the_per_block_op() {
        let blocks: Vec<Value> = (0..5)
            .map(|k| {
                if k == 2 {
                    symmetric_from_seed(&[1.0, 1.0, 2.0], 9)
                } else {
                    spd_from_seed(3, 20.0, k)
                }
            })
            .collect();
        let t = Tape::new();
        let s = t.leaf(stacked(&blocks)).unwrap();
        let y = matrix_function_sym_batched(s, 3, SymFn::Log).unwrap();
        let gbar = matgrad_engine::testing::real_matrix(15, 3, 1);
        let g = t.vjp(&[y], std::slice::from_ref(&gbar), &[s]).unwrap();
        for (k, b) in blocks.iter().enumerate() {
            let t2 = Tape::new();
            let x = t2.leaf(b.clone()).unwrap();
            let yk = crate::logm_sym(x).unwrap();
            let gk = split(&gbar, 3).remove(k);
            let want_g = t2.vjp(&[yk], &[gk], &[x]).unwrap().remove(0);
            assert!(split(&y.value(), 3)[k].rel_diff(&yk.value()).unwrap() < 1e-14);
            assert!(split(&g[0], 3)[k].rel_diff(&want_g).unwrap() < 1e-14);
        }
    }

    /// sym() of each block, so that finite differences along arbitrary directions stay
    /// in the op's (Hermitian) domain.
    fn blockwise_sym(x: Var<'_>, n: usize) -> matgrad_engine::Result<Var<'_>> {
        let b = x.shape().0 / n;
        let parts: Vec<Var<'_>> = (0..b)
            .map(|k| x.slice(k * n..(k + 1) * n, 0..n)?.sym())
            .collect::<matgrad_engine::Result<_>>()?;
        Var::vcat(&parts)
    }

    #[test]
    fn rules_including_ties_and_complex() {
        let real = stacked(&[
            symmetric_from_seed(&[1.0, 1.0, 2.0], 1),
            spd_from_seed(3, 5.0, 2),
        ]);
        assert_rules(
            "batched logm",
            |_, x| matrix_function_sym_batched(blockwise_sym(x[0], 3)?, 3, SymFn::Log),
            &[real],
        );
        let cplx = stacked(&[
            hermitian_from_seed(&[0.5, 2.0], 3),
            hermitian_from_seed(&[1.0, 1.0], 4),
        ]);
        assert_rules(
            "batched sqrt complex",
            |_, x| matrix_function_sym_batched(blockwise_sym(x[0], 2)?, 2, SymFn::Sqrt),
            &[cplx],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let s = t
            .leaf(stacked(&[
                spd_from_seed(2, 2.0, 1),
                symmetric_from_seed(&[-1.0, 1.0], 2),
            ]))
            .unwrap();
        match matrix_function_sym_batched(s, 2, SymFn::Log) {
            Err(SpectralError::InvalidArgument { message, .. }) => {
                assert!(message.contains("block 1"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            matrix_function_sym_batched(s, 3, SymFn::Log),
            Err(SpectralError::InvalidArgument { .. })
        ));
        let custom = SymFn::Custom {
            name: "id",
            f: Rc::new(|x: f64| x),
            df: Rc::new(|_| 1.0),
            d2f: None,
        };
        assert!(matches!(
            matrix_function_sym_batched(s, 2, custom),
            Err(SpectralError::InvalidArgument { .. })
        ));
    }
}
