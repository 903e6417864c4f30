//! The DeepO2P training step shared by `benches/bench_main.rs` (criterion) and
//! `examples/timings.rs` (the matgrad side of `benches/compare/compare.py`), so the bench,
//! the side-by-side script and the PyTorch/JAX versions in `compare.py` time the same thing:
//!
//! a batch of `B` patches, each `M` local descriptors of dimension `D`; learned features
//! `F_b = X_b W` (W: D×D); DeepO2P descriptor `triu_vec(logm(F_bᵀF_b/M + εI))`; a linear
//! classifier V (D(D+1)/2 × CLASSES); softmax cross-entropy; gradients of W and V.

use std::rc::Rc;

use matgrad::engine::{Result, Tape, Value, Var};
use matgrad::layers::train::loss;
use matgrad::layers::{o2p, o2p_batch, triu_rows, triu_vec};

/// Local descriptors per patch.
pub const M: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// Covariance ridge.
pub const EPS: f64 = 1e-3;

/// Inputs of one step: patches, labels, W and V. They are shared with each step's tape
/// (`Tape::leaf_shared`, `Tape::constant_shared`), not copied into it, as the PyTorch and
/// JAX versions pass their arrays.
pub struct Step {
    pub patches: Vec<Rc<Value>>,
    /// The patches stacked vertically ((B·M)×D).
    pub stacked: Rc<Value>,
    pub labels: Vec<usize>,
    pub w: Rc<Value>,
    pub v: Rc<Value>,
}

impl Step {
    /// A batch of `b` patches at feature dimension `d`, from fixed seeds.
    pub fn new(b: usize, d: usize) -> Step {
        use matgrad::engine::testing::real_matrix;
        let patches: Vec<Value> = (0..b).map(|i| real_matrix(M, d, 100 + i as u64)).collect();
        let stacked = {
            let tape = Tape::new();
            let parts: Vec<Var<'_>> = patches
                .iter()
                .map(|p| tape.constant(p.clone()))
                .collect::<Result<_>>()
                .expect("finite");
            Var::vcat(&parts).expect("same widths").value()
        };
        Step {
            patches: patches.into_iter().map(Rc::new).collect(),
            stacked: Rc::new(stacked),
            labels: (0..b).map(|i| i % CLASSES).collect(),
            w: Rc::new(real_matrix(d, d, 1)),
            v: Rc::new(real_matrix(d * (d + 1) / 2, CLASSES, 2)),
        }
    }

    /// One forward + backward through the batched layer (`o2p_batch` + `triu_rows`: a
    /// constant number of tape nodes for the whole batch): the loss and the gradients of W
    /// and V.
    pub fn run(&self) -> Result<(f64, Vec<Value>)> {
        let tape = Tape::new();
        let w = tape.leaf_shared(Rc::clone(&self.w))?;
        let v = tape.leaf_shared(Rc::clone(&self.v))?;
        let x = tape.constant_shared(Rc::clone(&self.stacked))?;
        let b = self.patches.len();
        let desc = triu_rows(o2p_batch(x.matmul(w)?, b, EPS)?, b)?;
        let l = loss::softmax_cross_entropy(desc.matmul(v)?, &self.labels)?;
        let g = tape.grad(l, &[w, v])?;
        Ok((l.value().scalar_real().unwrap_or(f64::NAN), g))
    }

    /// The same step with one `o2p` node per patch (the per-sample way to write it).
    pub fn run_per_patch(&self) -> Result<(f64, Vec<Value>)> {
        let tape = Tape::new();
        let w = tape.leaf_shared(Rc::clone(&self.w))?;
        let v = tape.leaf_shared(Rc::clone(&self.v))?;
        let rows: Vec<Var<'_>> = self
            .patches
            .iter()
            .map(|x| triu_vec(o2p(tape.constant_shared(Rc::clone(x))?.matmul(w)?, EPS)?))
            .collect::<Result<_>>()?;
        let l = loss::softmax_cross_entropy(Var::vcat(&rows)?.matmul(v)?, &self.labels)?;
        let g = tape.grad(l, &[w, v])?;
        Ok((l.value().scalar_real().unwrap_or(f64::NAN), g))
    }
}
