//! The tape: an arena of nodes, `Copy` handles into it, and the two sweeps.
//!
//! Reverse mode in one screen:
//!
//! 1. Every op computes its output values eagerly and pushes one node. If some input
//!    requires a gradient (and the tape is recording), the node also keeps the op (its
//!    residuals) and its input handles; otherwise it is a plain value.
//! 2. Push order is a topological order. `backward` seeds the cotangent of the outputs and
//!    walks the arena once, from the last node to the first, calling each recorded op's
//!    VJP rule and accumulating input cotangents in a flat `Vec<Option<Var>>` (one slot per
//!    node output).
//! 3. VJP rules are written with engine ops on `Var`s. With [`GradMode::CreateGraph`] the
//!    backward sweep is itself recorded, so its results can be differentiated again;
//!    otherwise the tape stops recording for the sweep and throws the temporaries away.
//!
//! Forward mode walks the same arena the other way, calling JVP rules.

use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{EngineError, Result};
use crate::value::{DType, Value};

/// A differentiation rule for one kind of node: the open extension point of the engine.
///
/// `spectral`, `layers` and users implement it for their own ops and put nodes on the
/// tape with [`Tape::record`]. Rules are written with engine ops on [`Var`]s so that they
/// can themselves be recorded (second order). A `None` cotangent or tangent means zero.
pub trait Op {
    /// The op's name, used in error messages and reports.
    fn name(&self) -> &'static str;

    /// Adjoint (VJP): given the cotangents of the outputs, return one cotangent per input
    /// (`None` for zero, or for inputs with `ctx.needs_grad(i) == false`). Each returned
    /// cotangent must have the shape and dtype of its input.
    fn vjp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        cotangents: &[Option<Var<'t>>],
    ) -> Result<Vec<Option<Var<'t>>>>;

    /// Tangent (JVP): given the tangents of the inputs, return one tangent per output.
    fn jvp<'t>(
        &self,
        ctx: &OpCtx<'_, 't>,
        tangents: &[Option<Var<'t>>],
    ) -> Result<Vec<Option<Var<'t>>>>;

    /// True when every output entry is a copy of an input entry, its conjugate, or zero (a
    /// transpose, reshape, slice, gather). Every value on a tape is finite, so such an
    /// op's outputs are too, and [`Tape::record`] skips their finiteness scan. Leave the
    /// default (`false`) for anything that computes: a wrong `true` lets a NaN through.
    fn copies_entries(&self) -> bool {
        false
    }

    /// True when the rules read [`OpCtx::cotangent_gross_norm`] (the gauge and tie checks
    /// of the spectral ops). The backward sweep sums the norms of the contributions to a
    /// cotangent only for the outputs of such ops; for every other op the method returns
    /// `None` whatever the contributions. Leave the default (`false`) unless a rule calls
    /// `cotangent_gross_norm`.
    fn reads_cotangent_norms(&self) -> bool {
        false
    }

    /// True when [`Op::vjp_values`] is implemented (the sweep then hands it the
    /// cotangents as values).
    #[doc(hidden)]
    fn has_values_rule(&self) -> bool {
        false
    }

    /// The adjoint on values, for reverse sweeps that are not recorded
    /// ([`GradMode::Detached`], the default): the cotangents of [`Op::vjp`], pushed into
    /// `out` (one per input) without putting a node on the tape. Return `Ok(false)` (the
    /// default) to have the sweep call [`Op::vjp`] instead. The fast path of the small hot
    /// ops of the engine (products, sums, scalings, transposes, reductions and broadcasts)
    /// and of `gram` and the symmetric matrix functions (single and batched), whose value
    /// rules give `vjp`'s cotangents bit for bit (compared in the engine's and spectral's
    /// tests), and of the fused rules of `eigh` and `conv2d`, which compute the same
    /// cotangents in another rounding order (compared with their `vjp` within a rounding
    /// bound in their own tests).
    #[doc(hidden)]
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        cotangents: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> Result<bool> {
        let _ = (ctx, cotangents, out);
        Ok(false)
    }
}

/// A cotangent value in a backward sweep that is not recorded, with an upper bound on the
/// magnitude of its entries (`+∞` when none is known; the sweep then scans it).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Ct {
    /// The value.
    pub value: Rc<Value>,
    /// `≥ max |entry|` (of the real and imaginary parts for a complex value), or `+∞`.
    pub bound: f64,
}

impl Ct {
    /// A fresh value with a bound.
    pub fn new(value: Value, bound: f64) -> Ct {
        Ct {
            value: crate::pool::wrap(value),
            bound,
        }
    }
}

/// A cotangent on its way through a backward sweep: a node on the tape (recorded sweeps,
/// and the results of rules without [`Op::vjp_values`]) or a value off the tape.
#[derive(Clone)]
enum Grad<'t> {
    Var(Var<'t>),
    Val(Ct),
}

/// What a rule may look at: the node's input and output handles.
pub struct OpCtx<'a, 't> {
    inputs: &'a [Var<'t>],
    outputs: &'a [Var<'t>],
    needs_grad: &'a [bool],
    recording: bool,
    node: u32,
    probes: Option<&'a RefCell<Vec<(u32, Invariance)>>>,
    gross: &'a [f64],
}

/// How [`Invariance`] directions are judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InvarianceMode {
    /// The consumers' tangent along the directions must be below `rtol` times their tangent
    /// along a random reference direction of the same size (the forward-mode counterpart of
    /// a VJP rule checking that a cotangent has no component along the directions).
    Numeric {
        /// Relative tolerance.
        rtol: f64,
    },
    /// Any dependence of the requested outputs on these outputs is an error (the
    /// counterpart of a VJP rule refusing whenever a cotangent reaches them).
    Structural,
}

/// Directions in an op's output space along which its output is not determined — a gauge
/// freedom (the phase or basis of eigenvectors) or a point where the output is not
/// differentiable (sorted eigenvalues at a tie). A JVP rule that returns a tangent which is
/// right only for consumers invariant along these directions registers them with
/// [`OpCtx::require_invariance`]; the forward sweep then pushes each direction through the
/// rest of the graph to the requested outputs and raises `error` unless they do not move.
/// This makes forward mode refuse exactly where reverse mode refuses.
pub struct Invariance {
    /// Each direction: one tangent per output of the node (`None` for zero).
    pub directions: Vec<Vec<Option<Value>>>,
    /// How the directions are judged.
    pub mode: InvarianceMode,
    /// The error to raise: the index of the offending direction and its relative size.
    pub error: Box<dyn Fn(usize, f64) -> EngineError>,
}

impl<'a, 't> OpCtx<'a, 't> {
    /// The `i`-th input.
    pub fn input(&self, i: usize) -> Var<'t> {
        self.inputs[i]
    }
    /// The `i`-th output.
    pub fn output(&self, i: usize) -> Var<'t> {
        self.outputs[i]
    }
    /// All inputs.
    pub fn inputs(&self) -> &[Var<'t>] {
        self.inputs
    }
    /// All outputs.
    pub fn outputs(&self) -> &[Var<'t>] {
        self.outputs
    }
    /// Whether the `i`-th input needs a cotangent (skip the work when it does not).
    pub fn needs_grad(&self, i: usize) -> bool {
        self.needs_grad[i]
    }
    /// Whether this sweep is being recorded (`GradMode::CreateGraph`). A rule may take a
    /// fused, value-only path when it is not, as long as it returns the same numbers.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Forward mode only: asks the sweep to check that the requested outputs are invariant
    /// along `inv`'s directions of this node's outputs (see [`Invariance`]). Ignored in a
    /// reverse sweep, where the rule checks its cotangents itself.
    pub fn require_invariance(&self, inv: Invariance) {
        if let Some(p) = self.probes {
            p.borrow_mut().push((self.node, inv));
        }
    }

    /// True in a forward (JVP) sweep, where [`OpCtx::require_invariance`] takes effect.
    pub fn is_forward(&self) -> bool {
        self.probes.is_some()
    }

    /// Reverse mode: when the cotangent of output `k` is a sum of several contributions,
    /// the sum of their Frobenius norms (its "gross" size); `None` when it came from one
    /// contribution. A rule checking that a cotangent has no component along a gauge
    /// direction compares against this: a cotangent that is the rounding residue of
    /// contributions that cancel (exactly zero in exact arithmetic) has components of every
    /// kind at the rounding level of those contributions, not of itself. Tracked only for
    /// ops whose [`Op::reads_cotangent_norms`] is true (else always `None`).
    pub fn cotangent_gross_norm(&self, k: usize) -> Option<f64> {
        self.gross.get(k).copied().filter(|g| !g.is_nan())
    }
}

/// Whether a backward/forward sweep is itself recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GradMode {
    /// Compute values only; the sweep's temporaries are discarded (the default).
    Detached,
    /// Record the sweep so that its results are `Var`s that can be differentiated again
    /// (grad-of-grad, Hessian-vector products).
    CreateGraph,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct VarId {
    node: u32,
    out: u32,
}

/// Input handles of a recorded node, inline for the common case of ≤ 3 inputs (saves an
/// allocation per op).
enum Inputs {
    Few { n: u8, ids: [VarId; 3] },
    Many(Box<[VarId]>),
}

impl Inputs {
    fn new(vars: &[Var<'_>]) -> Self {
        if vars.len() <= 3 {
            let mut ids = [VarId { node: 0, out: 0 }; 3];
            for (slot, v) in ids.iter_mut().zip(vars) {
                *slot = v.id;
            }
            Inputs::Few {
                n: vars.len() as u8,
                ids,
            }
        } else {
            Inputs::Many(vars.iter().map(|v| v.id).collect())
        }
    }
    fn as_slice(&self) -> &[VarId] {
        match self {
            Inputs::Few { n, ids } => &ids[..*n as usize],
            Inputs::Many(b) => b,
        }
    }
}

/// Output values of a node, inline for the common single-output case.
enum Outputs {
    One(Rc<Value>),
    Many(Box<[Rc<Value>]>),
}

impl Outputs {
    fn len(&self) -> usize {
        match self {
            Outputs::One(_) => 1,
            Outputs::Many(v) => v.len(),
        }
    }
    fn get(&self, i: usize) -> &Rc<Value> {
        match self {
            Outputs::One(v) => v,
            Outputs::Many(v) => &v[i],
        }
    }
}

struct Record {
    op: Rc<dyn Op>,
    inputs: Inputs,
}

struct Node {
    outputs: Outputs,
    first_slot: usize,
    requires_grad: bool,
    record: Option<Record>,
    /// An upper bound on the magnitude of every entry (of its real and imaginary parts, for
    /// a complex value) of a single-output node: `+∞` when none is known, and for nodes
    /// with several outputs; see [`Tape::bound`].
    bound: f64,
}

struct Inner {
    nodes: Vec<Node>,
    slots: usize,
    recording: bool,
}

/// An arena of values and the ops that produced them.
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// use faer::mat;
/// # fn main() -> Result<(), matgrad_engine::EngineError> {
/// let tape = Tape::new();
/// let a = tape.leaf(Value::Real(mat![[1.0, 2.0], [3.0, 4.0]]))?;
/// let y = a.matmul(a)?.trace()?;          // y = tr(A²)
/// let g = tape.grad(y, &[a])?;            // dy/dA = 2Aᵀ
/// assert_eq!(g[0].as_real().unwrap()[(0, 1)], 6.0);
/// # Ok(()) }
/// ```
pub struct Tape {
    inner: RefCell<Inner>,
}

thread_local! {
    /// The (emptied) node list of the last tape dropped on this thread, so that the next
    /// tape starts with its capacity instead of growing (and copying) its list again: a
    /// loop that builds one tape per step reuses one allocation.
    static SPARE_NODES: RefCell<Vec<Node>> = const { RefCell::new(Vec::new()) };
}

/// Node lists longer than this are not kept for reuse (≈ a few MB).
const MAX_SPARE_NODES: usize = 1 << 15;

impl Drop for Tape {
    fn drop(&mut self) {
        let mut nodes = std::mem::take(&mut self.inner.get_mut().nodes);
        recycle(&mut nodes, 0);
        if nodes.capacity() <= MAX_SPARE_NODES {
            // during thread teardown the slot may be gone: then the list is just freed
            let _ = SPARE_NODES.try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.capacity() < nodes.capacity() {
                        *s = nodes;
                    }
                }
            });
        }
    }
}

/// Truncates `nodes` to `len`, giving the buffers of the removed values that nothing else
/// holds to this thread's [`crate::pool`]. The ops (with their residuals) go first, so that
/// values they kept alive become free.
fn recycle(nodes: &mut Vec<Node>, len: usize) {
    if len >= nodes.len() {
        return;
    }
    for nd in &mut nodes[len..] {
        nd.record = None;
    }
    for nd in nodes.drain(len..).rev() {
        match nd.outputs {
            Outputs::One(v) => crate::pool::recycle(v),
            Outputs::Many(vs) => vs.into_vec().into_iter().for_each(crate::pool::recycle),
        }
    }
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Tape")
            .field("nodes", &inner.nodes.len())
            .field("recording", &inner.recording)
            .finish()
    }
}

/// A handle to one output of one node on a [`Tape`]. Cheap to copy.
#[derive(Clone, Copy)]
pub struct Var<'t> {
    tape: &'t Tape,
    id: VarId,
}

impl std::fmt::Debug for Var<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.rc();
        write!(
            f,
            "Var(node {}, out {}, {} {:?}{})",
            self.id.node,
            self.id.out,
            v.dtype(),
            v.shape(),
            if self.requires_grad() {
                ", requires_grad"
            } else {
                ""
            }
        )
    }
}

/// True when `bound` is a finite bound (not `+∞`, not NaN): the value needs no scan.
fn is_proved(bound: f64) -> bool {
    bound <= f64::MAX
}

/// `x ← x + y`, entry by entry (same shapes).
fn add_into<T: crate::value::Scalar>(x: &mut faer::Mat<T>, y: &faer::Mat<T>) {
    for j in 0..x.ncols() {
        for (p, &q) in x.col_as_slice_mut(j).iter_mut().zip(y.col_as_slice(j)) {
            *p += q;
        }
    }
}

/// Checks that every entry of a value entering the tape is finite; returns the bound
/// [`Value::finite_bound`] found on the way.
fn validate_value(op: &'static str, v: &Value) -> Result<f64> {
    v.finite_bound().ok_or(EngineError::NonFinite {
        op,
        place: "in the input",
        hint: "clean the data (replace NaN/inf) before it enters the tape",
    })
}

impl Tape {
    /// An empty tape that records.
    pub fn new() -> Self {
        crate::par::init();
        let mut nodes = SPARE_NODES
            .try_with(|s| std::mem::take(&mut *s.borrow_mut()))
            .unwrap_or_default();
        if nodes.capacity() == 0 {
            nodes.reserve(64);
        }
        Tape {
            inner: RefCell::new(Inner {
                nodes,
                slots: 0,
                recording: true,
            }),
        }
    }

    /// Number of nodes on the tape.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// True when the tape holds no node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(
        &self,
        outputs: Outputs,
        requires_grad: bool,
        record: Option<Record>,
        bound: f64,
    ) -> u32 {
        let mut inner = self.inner.borrow_mut();
        let first_slot = inner.slots;
        inner.slots += outputs.len();
        let idx = inner.nodes.len() as u32;
        let bound = if outputs.len() == 1 {
            bound
        } else {
            f64::INFINITY
        };
        inner.nodes.push(Node {
            outputs,
            first_slot,
            requires_grad,
            record,
            bound,
        });
        idx
    }

    /// A leaf that requires a gradient. Errors on a non-finite value. A matrix with zero
    /// rows or columns is a valid leaf (ops on it give empty or closed-form results).
    pub fn leaf(&self, value: impl Into<Value>) -> Result<Var<'_>> {
        let value = value.into();
        let bound = validate_value("leaf", &value)?;
        let node = self.push(Outputs::One(crate::pool::wrap(value)), true, None, bound);
        Ok(Var {
            tape: self,
            id: VarId { node, out: 0 },
        })
    }

    /// A leaf holding a value the caller shares (no copy): for parameters that stay the
    /// same across many tapes, such as a training loop's weights. The tape never writes
    /// to it, and never gives its buffer to the pool while the caller holds it. Errors
    /// on a non-finite value.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use matgrad_engine::{Axis, Tape, Value};
    /// # fn main() -> Result<(), matgrad_engine::EngineError> {
    /// let w = Rc::new(Value::Real(faer::mat![[1.0, 2.0], [3.0, 4.0]]));
    /// for _ in 0..3 {
    ///     let tape = Tape::new();
    ///     let x = tape.leaf_shared(Rc::clone(&w))?; // no copy of w
    ///     let y = x.matmul(x)?.sum(Axis::All)?;
    ///     let g = tape.grad(y, &[x])?;
    ///     assert_eq!(g[0].as_real().unwrap()[(0, 0)], 1.0 + 2.0 + 1.0 + 3.0);
    /// }
    /// assert_eq!(Rc::strong_count(&w), 1); // the tapes are gone, w is intact
    /// # Ok(()) }
    /// ```
    pub fn leaf_shared(&self, value: Rc<Value>) -> Result<Var<'_>> {
        self.push_shared("leaf", value, true)
    }

    /// A constant holding a value the caller shares (no copy), as [`Tape::leaf_shared`].
    /// Errors on a non-finite value.
    pub fn constant_shared(&self, value: Rc<Value>) -> Result<Var<'_>> {
        self.push_shared("constant", value, false)
    }

    fn push_shared(&self, op: &'static str, value: Rc<Value>, leaf: bool) -> Result<Var<'_>> {
        let bound = validate_value(op, &value)?;
        let node = self.push(Outputs::One(value), leaf, None, bound);
        Ok(Var {
            tape: self,
            id: VarId { node, out: 0 },
        })
    }

    /// A constant: a value that needs no gradient. Errors on a non-finite value.
    pub fn constant(&self, value: impl Into<Value>) -> Result<Var<'_>> {
        let value = value.into();
        let bound = validate_value("constant", &value)?;
        Ok(self.constant_bounded(value, bound))
    }

    /// A constant the caller knows to be finite (no bound known).
    pub(crate) fn constant_unchecked(&self, value: Value) -> Var<'_> {
        self.constant_bounded(value, f64::INFINITY)
    }

    /// A constant the caller knows to be finite, with every entry at most `bound` in
    /// magnitude.
    pub(crate) fn constant_bounded(&self, value: Value, bound: f64) -> Var<'_> {
        let node = self.push(Outputs::One(crate::pool::wrap(value)), false, None, bound);
        Var {
            tape: self,
            id: VarId { node, out: 0 },
        }
    }

    /// An upper bound on the magnitude of every entry of `v` (`+∞` when none is known):
    /// the exact maximum for a real value whose finiteness was scanned, or what the op that
    /// made it proved without a scan (see [`Tape::record1_bounded`]).
    pub(crate) fn bound(&self, v: Var<'_>) -> f64 {
        if v.id.out != 0 {
            return f64::INFINITY;
        }
        self.inner.borrow().nodes[v.id.node as usize].bound
    }

    /// Puts the result of an op on the tape: `outputs` are the values the op computed from
    /// `inputs`. The op (with its residuals) is kept only when some input requires a
    /// gradient and the tape is recording. Checks that every output is finite, so no op can
    /// hand a silent NaN to the next one.
    ///
    /// # Errors
    /// [`EngineError::ForeignVar`] when an input belongs to another tape,
    /// [`EngineError::NonFinite`] when an output holds NaN or ±∞,
    /// [`EngineError::InvalidArgument`] when `outputs` is empty.
    pub fn record<'t>(
        &'t self,
        op: Rc<dyn Op>,
        inputs: &[Var<'t>],
        outputs: Vec<Value>,
    ) -> Result<Vec<Var<'t>>> {
        let n_out = outputs.len();
        if n_out == 0 {
            return Err(EngineError::InvalidArgument {
                op: op.name(),
                message: "an op must record at least one output value (a bug in the op's forward function)".into(),
            });
        }
        let outputs = if n_out == 1 {
            Outputs::One(crate::pool::wrap(
                outputs.into_iter().next().expect("one output"),
            ))
        } else {
            Outputs::Many(outputs.into_iter().map(crate::pool::wrap).collect())
        };
        let node = self.record_impl(op, inputs, outputs, None)?;
        Ok((0..n_out as u32)
            .map(|out| Var {
                tape: self,
                id: VarId { node, out },
            })
            .collect())
    }

    /// `proved`: a finite bound on the single output's entries that the op proved from its
    /// inputs' bounds; the scan is skipped then.
    fn record_impl<'t>(
        &'t self,
        op: Rc<dyn Op>,
        inputs: &[Var<'t>],
        outputs: Outputs,
        proved: Option<f64>,
    ) -> Result<u32> {
        let name = op.name();
        for v in inputs {
            if !std::ptr::eq(v.tape, self) {
                return Err(EngineError::ForeignVar { op: name });
            }
        }
        let mut bound = f64::INFINITY;
        if let Some(b) = proved.filter(|b| *b <= f64::MAX && outputs.len() == 1) {
            bound = b;
        } else if op.copies_entries() {
            // every entry is an input entry, its conjugate or zero
            bound = inputs.iter().map(|v| self.bound(*v)).fold(0.0, f64::max);
        } else {
            for i in 0..outputs.len() {
                match outputs.get(i).finite_bound() {
                    Some(b) if i == 0 => bound = b,
                    Some(_) => {}
                    None => {
                        return Err(EngineError::NonFinite {
                            op: name,
                            place: "in the output",
                            hint: "the inputs are finite but the result overflowed or left the op's domain; rescale the input",
                        })
                    }
                }
            }
        }
        let (requires_grad, record) = {
            let inner = self.inner.borrow();
            let rg = inner.recording
                && inputs
                    .iter()
                    .any(|v| inner.nodes[v.id.node as usize].requires_grad);
            let rec = rg.then(|| Record {
                op,
                inputs: Inputs::new(inputs),
            });
            (rg, rec)
        };
        Ok(self.push(outputs, requires_grad, record, bound))
    }

    /// Like [`Tape::record`] for a single-output op.
    pub fn record1<'t>(
        &'t self,
        op: Rc<dyn Op>,
        inputs: &[Var<'t>],
        output: Value,
    ) -> Result<Var<'t>> {
        let node = self.record_impl(op, inputs, Outputs::One(crate::pool::wrap(output)), None)?;
        Ok(Var {
            tape: self,
            id: VarId { node, out: 0 },
        })
    }

    /// Like [`Tape::record1`] for an op that proved, from its inputs' [`Tape::bound`]s,
    /// that every entry of `output` is at most `bound` in magnitude: when `bound` is
    /// finite the output's finiteness scan is skipped (a product of finite factors cannot
    /// hold NaN unless it overflowed). The proof must hold in floating point, rounding
    /// included: a bound that is too small lets ±∞ onto the tape.
    pub(crate) fn record1_bounded<'t>(
        &'t self,
        op: Rc<dyn Op>,
        inputs: &[Var<'t>],
        output: Value,
        bound: f64,
    ) -> Result<Var<'t>> {
        let node = self.record_impl(
            op,
            inputs,
            Outputs::One(crate::pool::wrap(output)),
            Some(bound),
        )?;
        Ok(Var {
            tape: self,
            id: VarId { node, out: 0 },
        })
    }

    fn set_recording(&self, on: bool) -> bool {
        let mut inner = self.inner.borrow_mut();
        std::mem::replace(&mut inner.recording, on)
    }

    fn truncate(&self, len: usize) {
        let mut inner = self.inner.borrow_mut();
        if len < inner.nodes.len() {
            let slots = inner.nodes[len].first_slot;
            recycle(&mut inner.nodes, len);
            inner.slots = slots;
        }
    }

    fn check_own(&self, op: &'static str, vars: &[Var<'_>]) -> Result<()> {
        if vars.iter().all(|v| std::ptr::eq(v.tape, self)) {
            Ok(())
        } else {
            Err(EngineError::ForeignVar { op })
        }
    }

    /// Errors unless every var requires a gradient: differentiating with respect to a
    /// constant would silently give zeros.
    fn check_differentiable(&self, op: &'static str, vars: &[Var<'_>]) -> Result<()> {
        let inner = self.inner.borrow();
        match vars
            .iter()
            .position(|v| !inner.nodes[v.id.node as usize].requires_grad)
        {
            Some(index) => Err(EngineError::ConstantInput { op, index }),
            None => Ok(()),
        }
    }

    /// `a + b` for two cotangents of the same shape and dtype, in place when `a`'s value is
    /// held by nothing else; the same expression, entry by entry, as [`Var::add`].
    fn add_cts(a: Ct, b: &Ct) -> Result<Ct> {
        let Ct { mut value, bound } = a;
        // |x + y| ≤ |x| + |y|, and rounding is monotone
        let mut bound = bound + b.bound;
        match Rc::get_mut(&mut value) {
            Some(v) => match (v, &*b.value) {
                (Value::Real(x), Value::Real(y)) => add_into(x, y),
                (Value::Complex(x), Value::Complex(y)) => add_into(x, y),
                _ => unreachable!("cotangents of one slot share a dtype"),
            },
            None => {
                let sum = match (&*value, &*b.value) {
                    (Value::Real(x), Value::Real(y)) => {
                        Value::Real(crate::ops::ew2(x, y, |p, q| p + q))
                    }
                    (Value::Complex(x), Value::Complex(y)) => {
                        Value::Complex(crate::ops::ew2(x, y, |p, q| p + q))
                    }
                    _ => unreachable!("cotangents of one slot share a dtype"),
                };
                value = crate::pool::wrap(sum);
            }
        }
        if !is_proved(bound) {
            bound = value.finite_bound().ok_or(EngineError::NonFinite {
                op: "add",
                place: "in the output",
                hint: "the inputs are finite but the result overflowed or left the op's domain; rescale the input",
            })?;
        }
        Ok(Ct { value, bound })
    }

    /// The value and bound of a cotangent, moved (so that a value held by nothing else
    /// stays unshared and can be summed into in place).
    fn take_ct(&self, g: Grad<'_>) -> Ct {
        match g {
            Grad::Val(c) => c,
            Grad::Var(v) => Ct {
                value: v.rc(),
                bound: self.bound(v),
            },
        }
    }

    /// The value and bound of a cotangent.
    fn to_ct(&self, g: &Grad<'_>) -> Ct {
        match g {
            Grad::Val(c) => c.clone(),
            Grad::Var(v) => Ct {
                value: v.rc(),
                bound: self.bound(*v),
            },
        }
    }

    /// A cotangent as a node (a constant holding the shared value when it is off the tape).
    fn to_var<'t>(&'t self, g: &Grad<'t>) -> Var<'t> {
        match g {
            Grad::Var(v) => *v,
            Grad::Val(c) => {
                let bound = if c.bound <= f64::MAX {
                    c.bound
                } else {
                    f64::INFINITY
                };
                let node = self.push(Outputs::One(Rc::clone(&c.value)), false, None, bound);
                Var {
                    tape: self,
                    id: VarId { node, out: 0 },
                }
            }
        }
    }

    /// The reverse sweep. `cotangents[i]` seeds `outputs[i]`. Returns, for each `wrt`, its
    /// accumulated cotangent (`None` when it does not influence the outputs).
    ///
    /// A sweep that is not recorded keeps cotangents as values off the tape: ops with
    /// [`Op::vjp_values`] compute theirs without a node, sums are formed in place when the
    /// running sum is held by nothing else, and a cotangent goes back to the buffer pool
    /// once its node's rule has run. Rules without a value path get their cotangents as
    /// constant nodes (the shared value, no copy).
    fn sweep_backward<'t>(
        &'t self,
        outputs: &[Var<'t>],
        cotangents: Vec<Grad<'t>>,
        wrt: &[Var<'t>],
    ) -> Result<Vec<Option<Grad<'t>>>> {
        let (nodes_len, total_slots, recording) = {
            let inner = self.inner.borrow();
            (inner.nodes.len(), inner.slots, inner.recording)
        };
        let mut grads: Vec<Option<Grad<'t>>> = vec![None; total_slots];
        // gross size of accumulated cotangents (NaN: a single contribution), tracked only
        // for the outputs of ops that read it (Op::reads_cotangent_norms)
        let mut gross: Vec<f64> = vec![f64::NAN; total_slots];
        let mut tracked: Vec<bool> = vec![false; total_slots];
        {
            let inner = self.inner.borrow();
            for nd in &inner.nodes {
                if nd
                    .record
                    .as_ref()
                    .is_some_and(|r| r.op.reads_cotangent_norms())
                {
                    let s = nd.first_slot;
                    tracked[s..s + nd.outputs.len()].fill(true);
                }
            }
        }
        let slot_of = |id: VarId| -> usize {
            self.inner.borrow().nodes[id.node as usize].first_slot + id.out as usize
        };
        // the slots of `wrt`: their cotangents are the result, so they stay
        let wrt_slots: Vec<usize> = wrt.iter().map(|w| slot_of(w.id)).collect();
        // (a flag per slot for many results; a search through a few is cheaper)
        let is_wrt: Vec<bool> = if wrt_slots.len() > 16 {
            let mut f = vec![false; total_slots];
            wrt_slots.iter().for_each(|&s| f[s] = true);
            f
        } else {
            Vec::new()
        };
        let is_result = |s: usize| {
            if is_wrt.is_empty() {
                wrt_slots.contains(&s)
            } else {
                is_wrt[s]
            }
        };
        let accumulate = |grads: &mut Vec<Option<Grad<'t>>>,
                          gross: &mut Vec<f64>,
                          s: usize,
                          ct: Grad<'t>|
         -> Result<()> {
            grads[s] = Some(match grads[s].take() {
                Some(g) => {
                    if tracked[s] {
                        let before = if gross[s].is_nan() {
                            self.to_ct(&g).value.norm()
                        } else {
                            gross[s]
                        };
                        gross[s] = before + self.to_ct(&ct).value.norm();
                    }
                    match (g, recording) {
                        (Grad::Var(g), true) => Grad::Var(g.add(self.to_var(&ct))?),
                        (g, _) => {
                            let ct = self.take_ct(ct);
                            let sum = Self::add_cts(self.take_ct(g), &ct)?;
                            crate::pool::recycle(ct.value);
                            Grad::Val(sum)
                        }
                    }
                }
                None => ct,
            });
            Ok(())
        };
        for (o, c) in outputs.iter().zip(cotangents) {
            accumulate(&mut grads, &mut gross, slot_of(o.id), c)?;
        }
        // A node's rule yields cotangents for earlier nodes only, so nothing at or below
        // the lowest `wrt` node needs its rule run.
        let lowest = wrt
            .iter()
            .map(|v| v.id.node as usize + 1)
            .min()
            .unwrap_or(0);
        let highest = outputs
            .iter()
            .map(|v| v.id.node as usize + 1)
            .max()
            .unwrap_or(0)
            .min(nodes_len);
        // Buffers reused across nodes: the loop allocates nothing of its own per node.
        let mut in_vars: Vec<Var<'t>> = Vec::new();
        let mut out_vars: Vec<Var<'t>> = Vec::new();
        let mut needs: Vec<bool> = Vec::new();
        let mut cts: Vec<Option<Var<'t>>> = Vec::new();
        let mut ct_vals: Vec<Option<Ct>> = Vec::new();
        let mut out_vals: Vec<Option<Ct>> = Vec::new();
        for node in (lowest..highest).rev() {
            // Take what the rule needs out of the arena, so the rule may push new nodes.
            let (op, first_slot, n_out) = {
                let inner = self.inner.borrow();
                let nd = &inner.nodes[node];
                let Some(rec) = &nd.record else { continue };
                let (first_slot, n_out) = (nd.first_slot, nd.outputs.len());
                if grads[first_slot..first_slot + n_out]
                    .iter()
                    .all(Option::is_none)
                {
                    continue;
                }
                needs.clear();
                needs.extend(
                    rec.inputs
                        .as_slice()
                        .iter()
                        .map(|i| inner.nodes[i.node as usize].requires_grad),
                );
                in_vars.clear();
                in_vars.extend(
                    rec.inputs
                        .as_slice()
                        .iter()
                        .map(|&id| Var { tape: self, id }),
                );
                (rec.op.clone(), first_slot, n_out)
            };
            out_vars.clear();
            out_vars.extend((0..n_out as u32).map(|out| Var {
                tape: self,
                id: VarId {
                    node: node as u32,
                    out,
                },
            }));
            let ctx = OpCtx {
                inputs: &in_vars,
                outputs: &out_vars,
                needs_grad: &needs,
                recording,
                node: node as u32,
                probes: None,
                gross: &gross[first_slot..first_slot + n_out],
            };
            let by_value = !recording && op.has_values_rule() && {
                ct_vals.clear();
                ct_vals.extend(
                    grads[first_slot..first_slot + n_out]
                        .iter()
                        .map(|g| g.as_ref().map(|g| self.to_ct(g))),
                );
                out_vals.clear();
                op.vjp_values(&ctx, &ct_vals, &mut out_vals)?
            };
            // (a value rule that declined leaves its cotangents here: drop them either way)
            ct_vals.clear();
            let by_node = if by_value {
                None
            } else {
                cts.clear();
                cts.extend(
                    grads[first_slot..first_slot + n_out]
                        .iter()
                        .map(|g| g.as_ref().map(|g| self.to_var(g))),
                );
                Some(op.vjp(&ctx, &cts)?)
            };
            let n_in = by_node.as_ref().map_or(out_vals.len(), Vec::len);
            if n_in != in_vars.len() {
                return Err(EngineError::Op {
                    op: op.name(),
                    message: format!(
                        "vjp rule returned {n_in} cotangents for {} inputs (bug in the rule)",
                        in_vars.len()
                    ),
                });
            }
            // this node's cotangents are used up: back to the pool (unless they are results)
            if !recording {
                for (s, g) in grads.iter_mut().enumerate().skip(first_slot).take(n_out) {
                    if !is_result(s) {
                        if let Some(Grad::Val(c)) = g.take() {
                            crate::pool::recycle(c.value);
                        }
                    }
                }
            }
            let mut add_input_ct = |x: &Var<'t>, ct: Grad<'t>| -> Result<()> {
                let (xs, xd) = {
                    let v = x.rc();
                    (v.shape(), v.dtype())
                };
                let (cs, cd) = match &ct {
                    Grad::Var(v) => {
                        let v = v.rc();
                        (v.shape(), v.dtype())
                    }
                    Grad::Val(c) => (c.value.shape(), c.value.dtype()),
                };
                if xs != cs || xd != cd {
                    return Err(EngineError::Op {
                        op: op.name(),
                        message: format!(
                            "vjp rule returned a {cd} {cs:?} cotangent for a {xd} {xs:?} input (bug in the rule)"
                        ),
                    });
                }
                let ct = match ct {
                    Grad::Val(mut c) if !is_proved(c.bound) => {
                        c.bound = c.value.finite_bound().ok_or(EngineError::NonFinite {
                            op: op.name(),
                            place: "in a cotangent",
                            hint: "the cotangent overflowed; rescale the input or the loss",
                        })?;
                        Grad::Val(c)
                    }
                    ct => ct,
                };
                accumulate(&mut grads, &mut gross, slot_of(x.id), ct)
            };
            match by_node {
                None => {
                    for ((x, ct), &need) in in_vars.iter().zip(out_vals.drain(..)).zip(&needs) {
                        if let (Some(ct), true) = (ct, need) {
                            add_input_ct(x, Grad::Val(ct))?;
                        }
                    }
                }
                Some(node_cts) => {
                    for ((x, ct), &need) in in_vars.iter().zip(node_cts).zip(&needs) {
                        if let (Some(ct), true) = (ct, need) {
                            add_input_ct(x, Grad::Var(ct))?;
                        }
                    }
                }
            }
        }
        let result = wrt_slots.iter().map(|&s| grads[s].clone()).collect();
        // what is left (cotangents of nodes whose rules did not run) goes back to the pool
        for g in grads.into_iter().flatten() {
            if let Grad::Val(c) = g {
                crate::pool::recycle(c.value);
            }
        }
        Ok(result)
    }

    fn check_cotangents(outputs: &[Var<'_>], cotangents: &[Value]) -> Result<()> {
        if outputs.len() != cotangents.len() {
            return Err(EngineError::InvalidArgument {
                op: "vjp",
                message: format!(
                    "{} outputs but {} cotangents; pass one cotangent per output",
                    outputs.len(),
                    cotangents.len()
                ),
            });
        }
        for (o, c) in outputs.iter().zip(cotangents) {
            let v = o.rc();
            if v.shape() != c.shape() {
                return Err(EngineError::ShapeMismatch {
                    op: "vjp",
                    lhs: v.shape(),
                    rhs: c.shape(),
                    hint: "a cotangent has the shape of its output",
                });
            }
            if v.dtype() != c.dtype() {
                return Err(EngineError::DTypeMismatch {
                    op: "vjp",
                    lhs: v.dtype(),
                    rhs: c.dtype(),
                });
            }
        }
        Ok(())
    }

    /// Reverse mode with explicit cotangents: returns `Jᴴ ȳ` for each `wrt`, i.e. the
    /// gradient of `Σ_i Re⟨cotangents[i], outputs[i]⟩` (zeros where there is no
    /// dependence). The sweep is not recorded.
    ///
    /// # Errors
    /// Count, shape or dtype mismatch between outputs and cotangents; Vars from another
    /// tape; any error raised by a rule.
    pub fn vjp<'t>(
        &'t self,
        outputs: &[Var<'t>],
        cotangents: &[Value],
        wrt: &[Var<'t>],
    ) -> Result<Vec<Value>> {
        self.check_own("vjp", outputs)?;
        self.check_own("vjp", wrt)?;
        self.check_differentiable("vjp", wrt)?;
        Self::check_cotangents(outputs, cotangents)?;
        let mark = self.len();
        let was = self.set_recording(false);
        let result = (|| {
            // the seeds stay off the tape (values with their bounds)
            let seeds: Vec<Grad<'t>> = cotangents
                .iter()
                .map(|c| {
                    let bound = validate_value("vjp cotangent", c)?;
                    Ok(Grad::Val(Ct::new(c.clone(), bound)))
                })
                .collect::<Result<_>>()?;
            let g = self.sweep_backward(outputs, seeds, wrt)?;
            // Keep the shared values, not copies: once the temporaries are truncated, a
            // result held by no other node is moved out without a copy.
            Ok(g.into_iter()
                .zip(wrt)
                .map(|(g, w)| match g {
                    Some(Grad::Var(g)) => Ok(g.rc()),
                    Some(Grad::Val(c)) => Ok(c.value),
                    None => {
                        let v = w.rc();
                        Err(Value::zeros(v.dtype(), v.nrows(), v.ncols()))
                    }
                })
                .collect::<Vec<std::result::Result<Rc<Value>, Value>>>())
        })();
        self.set_recording(was);
        self.truncate(mark);
        result.map(|rs| {
            rs.into_iter()
                .map(|r| match r {
                    Ok(rc) => Rc::try_unwrap(rc).unwrap_or_else(|rc| (*rc).clone()),
                    Err(zero) => zero,
                })
                .collect()
        })
    }

    /// Reverse mode with recorded cotangents: like [`Tape::vjp`] but the sweep is recorded
    /// and the results are `Var`s, so they can be differentiated again. The cotangents may
    /// themselves depend on leaves.
    ///
    /// # Errors
    /// As [`Tape::vjp`].
    pub fn vjp_graph<'t>(
        &'t self,
        outputs: &[Var<'t>],
        cotangents: &[Var<'t>],
        wrt: &[Var<'t>],
    ) -> Result<Vec<Var<'t>>> {
        self.check_own("vjp_graph", outputs)?;
        self.check_own("vjp_graph", cotangents)?;
        self.check_own("vjp_graph", wrt)?;
        self.check_differentiable("vjp_graph", wrt)?;
        let cts: Vec<Value> = cotangents.iter().map(|c| (*c.rc()).clone()).collect();
        Self::check_cotangents(outputs, &cts)?;
        let was = self.set_recording(true);
        let seeds = cotangents.iter().map(|c| Grad::Var(*c)).collect();
        let result = self.sweep_backward(outputs, seeds, wrt).map(|g| {
            g.iter()
                .zip(wrt)
                .map(|(g, w)| match g {
                    Some(g) => self.to_var(g),
                    None => {
                        let v = w.rc();
                        self.constant_bounded(Value::zeros(v.dtype(), v.nrows(), v.ncols()), 0.0)
                    }
                })
                .collect()
        });
        self.set_recording(was);
        result
    }

    fn check_scalar(op: &'static str, y: Var<'_>) -> Result<()> {
        let v = y.rc();
        if v.shape() != (1, 1) || v.dtype() != DType::F64 {
            return Err(EngineError::NotScalar {
                op,
                shape: v.shape(),
                dtype: v.dtype(),
            });
        }
        Ok(())
    }

    /// Gradient of a real 1×1 output with respect to each of `wrt` (zeros where `y` does
    /// not depend on it). Every `wrt` must require a gradient (a leaf, or computed from one):
    /// asking for the gradient with respect to a constant is an error, not zeros. For a complex input `z` the gradient follows PyTorch's
    /// convention, `∂y/∂Re z + i ∂y/∂Im z`.
    ///
    /// # Errors
    /// [`EngineError::NotScalar`] when `y` is not real 1×1; [`EngineError::ConstantInput`]
    /// when some `wrt` needs no gradient; errors raised by rules.
    pub fn grad<'t>(&'t self, y: Var<'t>, wrt: &[Var<'t>]) -> Result<Vec<Value>> {
        Self::check_scalar("grad", y)?;
        self.check_own("grad", wrt)?;
        self.check_differentiable("grad", wrt)?;
        self.vjp(&[y], &[Value::scalar(1.0)], wrt)
    }

    /// Like [`Tape::grad`] but recorded (`create_graph`): the gradients are `Var`s that can
    /// be differentiated again.
    ///
    /// # Errors
    /// As [`Tape::grad`].
    pub fn grad_graph<'t>(&'t self, y: Var<'t>, wrt: &[Var<'t>]) -> Result<Vec<Var<'t>>> {
        Self::check_scalar("grad_graph", y)?;
        self.check_own("grad_graph", &[y])?;
        self.check_own("grad_graph", wrt)?;
        self.check_differentiable("grad_graph", wrt)?;
        let one = self.constant_bounded(Value::scalar(1.0), 1.0);
        self.vjp_graph(&[y], &[one], wrt)
    }

    /// The forward sweep: tangents of `outputs` given tangents of `inputs` (zero tangent
    /// for every other leaf).
    fn sweep_forward<'t>(
        &'t self,
        inputs: &[Var<'t>],
        tangents: &[Var<'t>],
        outputs: &[Var<'t>],
    ) -> Result<Vec<Option<Var<'t>>>> {
        let (start, end, base) = {
            let inner = self.inner.borrow();
            let start = inputs.iter().map(|v| v.id.node as usize).min().unwrap_or(0);
            let end = outputs
                .iter()
                .chain(inputs)
                .map(|v| v.id.node as usize + 1)
                .max()
                .unwrap_or(0);
            let base = inner.nodes.get(start).map_or(inner.slots, |n| n.first_slot);
            (start, end.max(start), base)
        };
        let end_slot = {
            let inner = self.inner.borrow();
            inner.nodes.get(end).map_or(inner.slots, |n| n.first_slot)
        };
        let mut tans: Vec<Option<Var<'t>>> = vec![None; end_slot - base];
        let slot_of = |id: VarId| -> usize {
            self.inner.borrow().nodes[id.node as usize].first_slot + id.out as usize
        };
        for (x, t) in inputs.iter().zip(tangents) {
            let s = slot_of(x.id) - base;
            tans[s] = Some(match tans[s] {
                Some(prev) => prev.add(*t)?,
                None => *t,
            });
        }
        let probes: RefCell<Vec<(u32, Invariance)>> = RefCell::new(Vec::new());
        for node in start..end {
            let (op, in_ids, first_slot, n_out) = {
                let inner = self.inner.borrow();
                let nd = &inner.nodes[node];
                let Some(rec) = &nd.record else { continue };
                (
                    rec.op.clone(),
                    rec.inputs.as_slice().to_vec(),
                    nd.first_slot,
                    nd.outputs.len(),
                )
            };
            let in_tans: Vec<Option<Var<'t>>> = in_ids
                .iter()
                .map(|&id| {
                    let s = slot_of(id);
                    if s >= base {
                        tans[s - base]
                    } else {
                        None
                    }
                })
                .collect();
            if in_tans.iter().all(Option::is_none) {
                continue;
            }
            let in_vars: Vec<Var<'t>> = in_ids.iter().map(|&id| Var { tape: self, id }).collect();
            let out_vars: Vec<Var<'t>> = (0..n_out as u32)
                .map(|out| Var {
                    tape: self,
                    id: VarId {
                        node: node as u32,
                        out,
                    },
                })
                .collect();
            let needs = vec![true; in_vars.len()];
            let recording = self.inner.borrow().recording;
            let ctx = OpCtx {
                inputs: &in_vars,
                outputs: &out_vars,
                needs_grad: &needs,
                recording,
                node: node as u32,
                probes: Some(&probes),
                gross: &[],
            };
            let out_tans = op.jvp(&ctx, &in_tans)?;
            if out_tans.len() != n_out {
                return Err(EngineError::Op {
                    op: op.name(),
                    message: format!(
                        "jvp rule returned {} tangents for {} outputs (bug in the rule)",
                        out_tans.len(),
                        n_out
                    ),
                });
            }
            for (k, t) in out_tans.into_iter().enumerate() {
                if let Some(t) = t {
                    let (ys, yd) = {
                        let v = out_vars[k].rc();
                        (v.shape(), v.dtype())
                    };
                    let v = t.rc();
                    if v.shape() != ys || v.dtype() != yd {
                        return Err(EngineError::Op {
                            op: op.name(),
                            message: format!(
                                "jvp rule returned a {} {:?} tangent for a {yd} {ys:?} output (bug in the rule)",
                                v.dtype(),
                                v.shape()
                            ),
                        });
                    }
                }
                tans[first_slot + k - base] = t;
            }
        }
        let result: Vec<Option<Var<'t>>> = outputs
            .iter()
            .map(|o| {
                let s = slot_of(o.id);
                if s >= base {
                    tans[s - base]
                } else {
                    None
                }
            })
            .collect();
        for (node, inv) in probes.into_inner() {
            self.check_invariance(node, &inv, outputs)?;
        }
        Ok(result)
    }

    /// Pushes `dirs` (tangents of node `node`'s outputs) through the graph to `outputs`,
    /// unrecorded, and returns the Frobenius norm of the outputs' tangents (`None` when no
    /// tangent reaches them at all).
    fn probe_norm<'t>(
        &'t self,
        node: u32,
        dirs: &[Option<Value>],
        outputs: &[Var<'t>],
    ) -> Result<Option<f64>> {
        let mark = self.len();
        let was = self.set_recording(false);
        let result = (|| {
            let mut ins = Vec::new();
            let mut ts = Vec::new();
            for (k, d) in dirs.iter().enumerate() {
                if let Some(d) = d {
                    ins.push(Var {
                        tape: self,
                        id: VarId {
                            node,
                            out: k as u32,
                        },
                    });
                    ts.push(self.constant_unchecked(d.clone()));
                }
            }
            if ins.is_empty() {
                return Ok(None);
            }
            let t = self.sweep_forward(&ins, &ts, outputs)?;
            if t.iter().all(Option::is_none) {
                return Ok(None);
            }
            let sq: f64 = t
                .iter()
                .flatten()
                .map(|v| v.with_value(|x| x.norm().powi(2)))
                .sum();
            Ok(Some(sq.sqrt()))
        })();
        self.set_recording(was);
        self.truncate(mark);
        result
    }

    fn check_invariance<'t>(
        &'t self,
        node: u32,
        inv: &Invariance,
        outputs: &[Var<'t>],
    ) -> Result<()> {
        if inv.directions.is_empty() {
            return Ok(());
        }
        let rtol = match inv.mode {
            InvarianceMode::Structural => {
                return match self.probe_norm(node, &inv.directions[0], outputs)? {
                    None => Ok(()),
                    Some(_) => Err((inv.error)(0, f64::INFINITY)),
                };
            }
            InvarianceMode::Numeric { rtol } => rtol,
        };
        // One combined probe (random coefficients) and one random reference of the same
        // size; only when the combination moves the outputs are the directions tried one by
        // one to name the culprit.
        use rand::SeedableRng;
        use rand_distr::Distribution;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9e37_79b9_7f4a_7c15 ^ u64::from(node));
        let n_out = inv.directions[0].len();
        let mut combined: Vec<Option<Value>> = vec![None; n_out];
        for dir in &inv.directions {
            let c: f64 = rand_distr::StandardNormal.sample(&mut rng);
            for (slot, d) in combined.iter_mut().zip(dir) {
                if let Some(d) = d {
                    *slot = Some(match slot.take() {
                        Some(acc) => acc.axpy(c, d)?,
                        None => Value::zeros(d.dtype(), d.nrows(), d.ncols()).axpy(c, d)?,
                    });
                }
            }
        }
        let dir_norm = |d: &[Option<Value>]| -> f64 {
            d.iter()
                .flatten()
                .map(|v| v.norm().powi(2))
                .sum::<f64>()
                .sqrt()
        };
        let reference: Vec<Option<Value>> = combined
            .iter()
            .map(|d| d.as_ref().map(|d| crate::check::random_like(d, &mut rng)))
            .collect();
        let (cn, rn) = (dir_norm(&combined), dir_norm(&reference));
        let moved = self.probe_norm(node, &combined, outputs)?.unwrap_or(0.0);
        let base = self.probe_norm(node, &reference, outputs)?.unwrap_or(0.0);
        // Rounding floor: a perturbation of relative size δ of the node's outputs that moves
        // the requested outputs by less than ≈1e3·ε·δ of their size is no dependence (when
        // the consumers barely depend on these outputs at all, `base` is rounding too).
        let out_norm = outputs
            .iter()
            .map(|o| o.with_value(|v| v.norm().powi(2)))
            .sum::<f64>()
            .sqrt();
        let node_norm = inv.directions[0]
            .iter()
            .enumerate()
            .filter(|(_, d)| d.is_some())
            .map(|(k, _)| {
                let v = Var {
                    tape: self,
                    id: VarId {
                        node,
                        out: k as u32,
                    },
                };
                v.with_value(|x| x.norm().powi(2))
            })
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        let floor = 1e3 * f64::EPSILON * out_norm / node_norm;
        let rel = |m: f64, n: f64| -> f64 {
            let scale = base / rn.max(f64::MIN_POSITIVE);
            let per_unit = m / n.max(f64::MIN_POSITIVE);
            if per_unit <= floor {
                0.0
            } else if scale == 0.0 {
                f64::INFINITY
            } else {
                per_unit / scale
            }
        };
        let size = rel(moved, cn);
        if size <= rtol {
            return Ok(());
        }
        for (k, dir) in inv.directions.iter().enumerate() {
            let m = self.probe_norm(node, dir, outputs)?.unwrap_or(0.0);
            let s = rel(m, dir_norm(dir));
            if s > rtol {
                return Err((inv.error)(k, s));
            }
        }
        Err((inv.error)(0, size))
    }

    fn check_tangents(inputs: &[Var<'_>], tangents: &[Value]) -> Result<()> {
        if inputs.len() != tangents.len() {
            return Err(EngineError::InvalidArgument {
                op: "jvp",
                message: format!(
                    "{} inputs but {} tangents; pass one tangent per input",
                    inputs.len(),
                    tangents.len()
                ),
            });
        }
        for (x, t) in inputs.iter().zip(tangents) {
            let v = x.rc();
            if v.shape() != t.shape() {
                return Err(EngineError::ShapeMismatch {
                    op: "jvp",
                    lhs: v.shape(),
                    rhs: t.shape(),
                    hint: "a tangent has the shape of its input",
                });
            }
            if v.dtype() != t.dtype() {
                return Err(EngineError::DTypeMismatch {
                    op: "jvp",
                    lhs: v.dtype(),
                    rhs: t.dtype(),
                });
            }
            validate_value("jvp tangent", t)?;
        }
        Ok(())
    }

    /// Forward mode on an already-built graph: the directional derivative of each of
    /// `outputs` when `inputs[i]` moves along `tangents[i]`. Inputs must be leaves that
    /// require a gradient (or values computed from such leaves). Not recorded.
    ///
    /// # Errors
    /// Count, shape or dtype mismatch between inputs and tangents; errors raised by rules.
    pub fn jvp<'t>(
        &'t self,
        inputs: &[Var<'t>],
        tangents: &[Value],
        outputs: &[Var<'t>],
    ) -> Result<Vec<Value>> {
        self.check_own("jvp", inputs)?;
        self.check_own("jvp", outputs)?;
        self.check_differentiable("jvp", inputs)?;
        Self::check_tangents(inputs, tangents)?;
        let mark = self.len();
        let was = self.set_recording(false);
        let result = (|| {
            let seeds: Vec<Var<'t>> = tangents
                .iter()
                .map(|t| self.constant_unchecked(t.clone()))
                .collect();
            let t = self.sweep_forward(inputs, &seeds, outputs)?;
            Ok(t.iter()
                .zip(outputs)
                .map(|(t, o)| match t {
                    Some(t) => (*t.rc()).clone(),
                    None => {
                        let v = o.rc();
                        Value::zeros(v.dtype(), v.nrows(), v.ncols())
                    }
                })
                .collect())
        })();
        self.set_recording(was);
        self.truncate(mark);
        result
    }

    /// Forward mode, recorded: tangents are `Var`s (forward-over-reverse, JVP of a JVP).
    ///
    /// # Errors
    /// As [`Tape::jvp`].
    pub fn jvp_graph<'t>(
        &'t self,
        inputs: &[Var<'t>],
        tangents: &[Var<'t>],
        outputs: &[Var<'t>],
    ) -> Result<Vec<Var<'t>>> {
        self.check_own("jvp_graph", inputs)?;
        self.check_own("jvp_graph", tangents)?;
        self.check_own("jvp_graph", outputs)?;
        self.check_differentiable("jvp_graph", inputs)?;
        let tv: Vec<Value> = tangents.iter().map(|t| (*t.rc()).clone()).collect();
        Self::check_tangents(inputs, &tv)?;
        let was = self.set_recording(true);
        let result = self.sweep_forward(inputs, tangents, outputs).map(|t| {
            t.iter()
                .zip(outputs)
                .map(|(t, o)| match t {
                    Some(t) => *t,
                    None => {
                        let v = o.rc();
                        self.constant_bounded(Value::zeros(v.dtype(), v.nrows(), v.ncols()), 0.0)
                    }
                })
                .collect()
        });
        self.set_recording(was);
        result
    }
}

impl<'t> Var<'t> {
    pub(crate) fn rc(&self) -> Rc<Value> {
        self.tape.inner.borrow().nodes[self.id.node as usize]
            .outputs
            .get(self.id.out as usize)
            .clone()
    }

    /// The tape this handle points into.
    pub fn tape(&self) -> &'t Tape {
        self.tape
    }

    /// A copy of the value.
    pub fn value(&self) -> Value {
        (*self.rc()).clone()
    }

    /// Runs `f` on the value without copying it.
    pub fn with_value<R>(&self, f: impl FnOnce(&Value) -> R) -> R {
        f(&self.rc())
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        self.rc().shape()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.rc().dtype()
    }

    /// Whether gradients flow to this value (it is a leaf that requires a gradient, or was
    /// computed from one while the tape was recording).
    pub fn requires_grad(&self) -> bool {
        self.tape.inner.borrow().nodes[self.id.node as usize].requires_grad
    }

    /// The same value as a constant: gradients do not flow through the result.
    pub fn detach(self) -> Var<'t> {
        self.tape
            .constant_bounded(self.value(), self.tape.bound(self))
    }

    /// A shared pointer to the value, for ops that keep it as a residual without copying.
    pub fn value_rc(&self) -> Rc<Value> {
        self.rc()
    }
}

/// Checks that all `vars` live on one tape and returns it.
///
/// # Errors
/// [`EngineError::ForeignVar`] naming `op`.
pub fn same_tape<'t>(op: &'static str, vars: &[Var<'t>]) -> Result<&'t Tape> {
    let Some(first) = vars.first() else {
        return Err(EngineError::InvalidArgument {
            op,
            message: "no operands".into(),
        });
    };
    let t = first.tape;
    if vars.iter().all(|v| std::ptr::eq(v.tape, t)) {
        Ok(t)
    } else {
        Err(EngineError::ForeignVar { op })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{complex_matrix, real_matrix};
    use crate::{Axis, DType, EngineError, Tape, Value};

    /// A shared leaf or constant is never written to and never pooled while its owner
    /// holds it, across tapes, detached and recorded sweeps; gradients equal a copied
    /// leaf's bit for bit.
    #[test]
    fn shared_values_stay_intact() {
        use std::rc::Rc;
        let (a0, b0) = (real_matrix(3, 3, 1), real_matrix(3, 3, 2));
        let (a, b) = (Rc::new(a0.clone()), Rc::new(b0.clone()));
        // x reused (in-place sums of its cotangent), y a constant
        fn f<'t>(_: &'t Tape, x: crate::Var<'t>, y: crate::Var<'t>) -> crate::Var<'t> {
            let p = x.matmul(y).unwrap().add(x).unwrap().scale(2.0).unwrap();
            p.matmul(x).unwrap().sum(Axis::All).unwrap()
        }
        for round in 0..3 {
            let t = Tape::new();
            let x = t.leaf_shared(Rc::clone(&a)).unwrap();
            let y = t.constant_shared(Rc::clone(&b)).unwrap();
            let g = t.grad(f(&t, x, y), &[x]).unwrap();
            let gg = t.grad_graph(f(&t, x, y), &[x]).unwrap()[0].value();
            let t2 = Tape::new();
            let x2 = t2.leaf(a0.clone()).unwrap();
            let y2 = t2.constant(b0.clone()).unwrap();
            let want = t2.grad(f(&t2, x2, y2), &[x2]).unwrap();
            assert!(bits(&g[0]) == bits(&want[0]), "round {round}");
            assert!(bits(&gg) == bits(&want[0]), "round {round}");
        }
        // every tape is gone: the values are the callers' alone, and unchanged
        assert_eq!((Rc::strong_count(&a), Rc::strong_count(&b)), (1, 1));
        assert!(bits(&a) == bits(&a0) && bits(&b) == bits(&b0));
        let bad = Rc::new(Value::Real(faer::mat![[f64::NAN]]));
        let t = Tape::new();
        assert!(matches!(
            t.leaf_shared(Rc::clone(&bad)),
            Err(EngineError::NonFinite { .. })
        ));
        assert!(matches!(
            t.constant_shared(bad),
            Err(EngineError::NonFinite { .. })
        ));
    }

    /// Every entry's bits, to compare two results for exact equality.
    fn bits(v: &Value) -> Vec<(u64, u64)> {
        match v {
            Value::Real(m) => (0..m.ncols())
                .flat_map(|j| (0..m.nrows()).map(move |i| (m[(i, j)].to_bits(), 0)))
                .collect(),
            Value::Complex(m) => (0..m.ncols())
                .flat_map(|j| {
                    (0..m.nrows()).map(move |i| (m[(i, j)].re.to_bits(), m[(i, j)].im.to_bits()))
                })
                .collect(),
        }
    }

    type Graph = for<'t> fn(&'t Tape, &[crate::Var<'t>]) -> crate::Result<crate::Var<'t>>;

    /// The detached sweep (cotangents off the tape, `Op::vjp_values` where an op has it)
    /// and the recorded sweep (`Op::vjp` on nodes) give the same bits for `f`, with
    /// respect to the inputs marked `true` in `leaves` (the others are constants).
    fn value_and_node_rules_agree(name: &str, f: Graph, inputs: &[Value], leaves: &[bool]) {
        let run = |recorded: bool| -> Vec<Value> {
            let t = Tape::new();
            let xs: Vec<crate::Var<'_>> = inputs
                .iter()
                .zip(leaves)
                .map(|(v, &leaf)| {
                    if leaf {
                        t.leaf(v.clone()).unwrap()
                    } else {
                        t.constant(v.clone()).unwrap()
                    }
                })
                .collect();
            let wrt: Vec<crate::Var<'_>> = xs
                .iter()
                .zip(leaves)
                .filter(|(_, &leaf)| leaf)
                .map(|(x, _)| *x)
                .collect();
            let y = f(&t, &xs).unwrap();
            let (m, n) = y.shape();
            let ct = match y.dtype() {
                DType::F64 => real_matrix(m, n, 77),
                DType::C64 => complex_matrix(m, n, 77),
            };
            if recorded {
                let c = t.constant(ct).unwrap();
                t.vjp_graph(&[y], &[c], &wrt)
                    .unwrap()
                    .iter()
                    .map(|g| g.value())
                    .collect()
            } else {
                t.vjp(&[y], &[ct], &wrt).unwrap()
            }
        };
        let (fast, slow) = (run(false), run(true));
        assert_eq!(fast.len(), slow.len());
        for (k, (a, b)) in fast.iter().zip(&slow).enumerate() {
            assert_eq!(a.shape(), b.shape(), "{name}: gradient {k}");
            assert!(
                bits(a) == bits(b),
                "{name}: gradient {k} differs:\n{a:?}\nvs\n{b:?}"
            );
        }
    }

    #[test]
    fn value_rules_equal_node_rules() {
        use crate::Form::{Adjoint as H, Plain as P};
        for make in [real_matrix, complex_matrix] {
            // rectangular factors, every form pair, and with either factor constant
            let (a, b) = (make(3, 4, 1), make(4, 2, 2));
            let (ah, bh) = (make(4, 3, 3), make(2, 4, 4));
            let cases: [(&str, Graph, [&Value; 2]); 4] = [
                ("PP", |_, x| x[0].matmul_forms(P, x[1], P), [&a, &b]),
                ("HP", |_, x| x[0].matmul_forms(H, x[1], P), [&ah, &b]),
                ("PH", |_, x| x[0].matmul_forms(P, x[1], H), [&a, &bh]),
                ("HH", |_, x| x[0].matmul_forms(H, x[1], H), [&ah, &bh]),
            ];
            for (name, f, [x, y]) in cases {
                for leaves in [[true, true], [true, false], [false, true]] {
                    value_and_node_rules_agree(name, f, &[x.clone(), y.clone()], &leaves);
                }
            }
            let (p, q) = (make(3, 3, 5), make(3, 3, 6));
            let entrywise: [(&str, Graph); 15] = [
                ("add", |_, x| x[0].add(x[1])),
                ("sub", |_, x| x[0].sub(x[1])),
                ("neg", |_, x| x[0].neg()?.add(x[1])),
                ("scale", |_, x| x[0].scale(-2.5)?.add(x[1].scale(0.0)?)),
                ("add_scalar", |_, x| x[0].add_scalar(1.5)?.sub(x[1])),
                ("add_identity", |_, x| x[0].add_identity(-0.5)?.add(x[1])),
                // a value used several times: sums formed in place and into shared values
                ("reuse", |_, x| {
                    let s = x[0].matmul(x[0])?.add(x[0])?.scale(0.5)?;
                    s.matmul(x[1])?.sub(s)?.add(x[0])
                }),
                // a chain, as the benchmark's
                ("chain", |_, x| {
                    let mut y = x[0];
                    for _ in 0..10 {
                        y = x[1].matmul(y)?.add(x[0])?.scale(0.5)?;
                    }
                    Ok(y)
                }),
                // an op without a value rule in the middle (its cotangents become nodes)
                ("mixed", |_, x| {
                    let p = x[0].matmul(x[1])?;
                    p.tanh()?.add(p)?.scale(0.5)?.sub(x[1])
                }),
                ("mul", |_, x| x[0].mul(x[1])?.add(x[0])),
                // both factors one value: two contributions to one cotangent
                ("mul_self", |_, x| x[0].mul(x[0])?.sub(x[1])),
                ("transpose", |_, x| {
                    x[0].transpose()?.matmul(x[1])?.add(x[1].transpose()?)
                }),
                ("adjoint", |_, x| x[0].adjoint()?.mul(x[1])),
                ("sum", |_, x| x[0].mul(x[1])?.sum(crate::Axis::All)),
                // the divisor shifted away from 0 (q's entries are standard normal)
                ("div", |_, x| {
                    let d = x[1].mul(x[1])?.add_scalar(0.5)?;
                    x[0].div(d)?
                        .add(x[0].div(x[0].mul(x[0])?.add_scalar(1.0)?)?)
                }),
            ];
            for (name, f) in entrywise {
                for leaves in [[true, true], [true, false]] {
                    value_and_node_rules_agree(name, f, &[p.clone(), q.clone()], &leaves);
                }
            }
            // rectangular: the transposes and every axis of sum
            let (r, s) = (make(2, 5, 9), make(2, 5, 10));
            let rectangular: [(&str, Graph); 7] = [
                ("transpose 2×5", |_, x| x[0].transpose()?.matmul(x[1])),
                ("adjoint 2×5", |_, x| x[0].adjoint()?.matmul(x[1])),
                ("sum all 2×5", |_, x| x[0].mul(x[1])?.sum(crate::Axis::All)),
                ("sum rows 2×5", |_, x| {
                    x[0].mul(x[1])?.sum(crate::Axis::Rows)
                }),
                ("sum cols 2×5", |_, x| {
                    x[0].mul(x[1])?.sum(crate::Axis::Cols)
                }),
                // broadcasts along rows, columns, both, and none
                ("broadcast 2×5", |_, x| {
                    let c = x[0].sum(crate::Axis::Cols)?.broadcast_to(2, 5)?;
                    let r = x[0].sum(crate::Axis::Rows)?.broadcast_to(2, 5)?;
                    let a = x[0].sum(crate::Axis::All)?.broadcast_to(2, 5)?;
                    c.mul(x[1])?.add(r)?.sub(a)?.add(x[1].broadcast_to(2, 5)?)
                }),
                // overlapping slices of one value, an embedding, and both concatenations
                // with a constant part (no cotangent wanted for it)
                ("slices 2×5", |t, x| {
                    let a = x[0].slice(0..2, 1..4)?;
                    let b = x[0].slice(1..2, 0..3)?.embed((2, 3), 1, 0)?;
                    let k = t.constant(Value::Real(faer::Mat::from_fn(2, 2, |i, j| {
                        (i + 2 * j) as f64
                    })))?;
                    let k = if x[1].dtype() == DType::C64 {
                        k.to_complex()?
                    } else {
                        k
                    };
                    let h = crate::Var::hcat(&[a.add(b)?, k, x[1].slice(0..2, 0..1)?])?;
                    crate::Var::vcat(&[h.transpose()?, x[1].transpose()?])
                }),
            ];
            for (name, f) in rectangular {
                for leaves in [[true, true], [false, true]] {
                    value_and_node_rules_agree(name, f, &[r.clone(), s.clone()], &leaves);
                }
            }
            // gram: one block (the rule's product is a matmul) and several (a bmm), a
            // negative factor, a ridge or none; and a stack used twice (two contributions)
            let stack = make(6, 3, 11);
            let grams: [(&str, Graph); 4] = [
                ("gram 1 block", |_, x| x[0].gram_blocks(1, 0.4, 0.1)),
                ("gram 2 blocks", |_, x| x[0].gram_blocks(2, 1.0 / 3.0, 1e-3)),
                ("gram 3 blocks", |_, x| x[0].gram_blocks(3, -0.5, 0.0)),
                ("gram and reuse", |_, x| {
                    let c = x[0].gram_blocks(2, 0.25, 0.0)?;
                    x[0].matmul(c.slice(0..3, 0..3)?)?.add(x[0])
                }),
            ];
            for (name, f) in grams {
                value_and_node_rules_agree(name, f, std::slice::from_ref(&stack), &[true]);
            }
        }
        // every pointwise function, on inputs inside its domain; real abs and relu at
        // zeros (their subgradient), complex abs at a zero entry
        let positive = Value::Real(faer::Mat::from_fn(3, 4, |i, j| {
            0.4 + (i * 4 + j) as f64 * 0.3
        }));
        let right_half = Value::Complex(faer::Mat::from_fn(3, 4, |i, j| {
            crate::C64::new(
                0.4 + (i * 4 + j) as f64 * 0.3,
                0.7 * i as f64 - 0.9 + 0.1 * j as f64,
            )
        }));
        let with_zeros = Value::Real(faer::Mat::from_fn(3, 4, |i, j| {
            (i as f64 - 1.0) * (j as f64 - 1.5)
        }));
        let complex_with_zero = Value::Complex(faer::Mat::from_fn(3, 4, |i, j| {
            crate::C64::new(
                (i as f64 - 1.0) * j as f64,
                (i + j) as f64 * 0.5 - 0.5 * (j == 1) as u8 as f64,
            )
        }));
        let analytic: [(&str, Graph); 9] = [
            ("exp", |_, x| x[0].exp()),
            ("log", |_, x| x[0].log()),
            ("sqrt", |_, x| x[0].sqrt()),
            ("powf 0", |_, x| x[0].powf(0.0)),
            ("powf 2", |_, x| x[0].powf(2.0)),
            ("powf 0.5", |_, x| x[0].powf(0.5)),
            ("powf -1.5", |_, x| x[0].powf(-1.5)),
            ("tanh", |_, x| x[0].tanh()),
            ("sigmoid", |_, x| x[0].sigmoid()),
        ];
        for (name, f) in analytic {
            for x in [&positive, &right_half] {
                value_and_node_rules_agree(name, f, std::slice::from_ref(x), &[true]);
            }
        }
        let real_only: [(&str, Graph); 3] = [
            ("relu", |_, x| x[0].relu()),
            ("abs", |_, x| x[0].abs()),
            ("softplus", |_, x| x[0].softplus()),
        ];
        for (name, f) in real_only {
            for x in [&positive, &with_zeros] {
                value_and_node_rules_agree(name, f, std::slice::from_ref(x), &[true]);
            }
        }
        for x in [&right_half, &complex_with_zero] {
            value_and_node_rules_agree(
                "complex abs",
                |_, x| x[0].abs(),
                std::slice::from_ref(x),
                &[true],
            );
        }
        // scale by a complex constant
        let z = complex_matrix(2, 3, 8);
        value_and_node_rules_agree(
            "scale_complex",
            |_, x| x[0].scale_complex(crate::C64::new(0.3, -1.2))?.add(x[0]),
            &[z],
            &[true],
        );
    }

    /// A cotangent that overflows off the tape is an error naming the op, as on it: every
    /// form pair of a product, each factor's cotangent on its own (a bound proved too small
    /// would let ±∞ through).
    #[test]
    fn overflowing_value_cotangent_is_an_error() {
        use crate::Form::{Adjoint as H, Plain as P};
        let big = |m, n| Value::Real(faer::Mat::from_fn(m, n, |_, _| 1e10));
        for (fa, fb) in [(P, P), (H, P), (P, H), (H, H)] {
            for which in 0..2 {
                for recorded in [false, true] {
                    let t = Tape::new();
                    // factors 2×2, product finite (2e20); ct 1e300 makes both cotangents ∞
                    // the other factor constant, so that only this cotangent is formed
                    let (a, b) = if which == 0 {
                        (t.leaf(big(2, 2)).unwrap(), t.constant(big(2, 2)).unwrap())
                    } else {
                        (t.constant(big(2, 2)).unwrap(), t.leaf(big(2, 2)).unwrap())
                    };
                    let y = a.matmul_forms(fa, b, fb).unwrap();
                    let ct = Value::Real(faer::Mat::from_fn(2, 2, |_, _| 1e300));
                    let wrt = [[a], [b]][which];
                    let err = if recorded {
                        let c = t.constant(ct).unwrap();
                        t.vjp_graph(&[y], &[c], &wrt).unwrap_err()
                    } else {
                        t.vjp(&[y], &[ct], &wrt).unwrap_err()
                    };
                    assert!(
                        matches!(err, EngineError::NonFinite { op: "matmul", .. }),
                        "{fa:?}{fb:?} input {which} recorded {recorded}: {err:?}"
                    );
                }
            }
        }
    }

    /// Two finite contributions whose sum overflows: an error naming `add`, whether the
    /// sum is formed into a shared value (`a + a`: both contributions are the same value)
    /// or in place (`a + a` through two scalings: each contribution is its own).
    #[test]
    fn overflowing_sum_of_cotangents_is_an_error() {
        let graphs: [Graph; 2] = [
            |_, x| x[0].add(x[0]),
            |_, x| x[0].scale(1.0)?.add(x[0].scale(1.0)?),
        ];
        for (k, f) in graphs.into_iter().enumerate() {
            for recorded in [false, true] {
                let t = Tape::new();
                let a = t.leaf(faer::mat![[1.0, -2.0]]).unwrap();
                let y = f(&t, &[a]).unwrap();
                let ct = Value::Real(faer::mat![[1e308, -1.5e308]]);
                let err = if recorded {
                    let c = t.constant(ct).unwrap();
                    t.vjp_graph(&[y], &[c], &[a]).unwrap_err()
                } else {
                    t.vjp(&[y], &[ct], &[a]).unwrap_err()
                };
                assert!(
                    matches!(err, EngineError::NonFinite { op: "add", .. }),
                    "graph {k} recorded {recorded}: {err:?}"
                );
            }
        }
    }

    /// A 2×2 chain of products, sums and scalings, forward and backward, in real or
    /// complex; returns the output's value, the gradient and a value held past the tape.
    fn pooled_chain(dtype: DType) -> (Value, Value, std::rc::Rc<Value>) {
        let m = |seed| match dtype {
            DType::F64 => real_matrix(2, 2, seed),
            DType::C64 => complex_matrix(2, 2, seed),
        };
        let t = Tape::new();
        let w = t.leaf(m(1)).unwrap();
        let b = t.constant(m(2)).unwrap();
        let mut x = t.leaf(m(3)).unwrap();
        let mut held = None;
        for k in 0..20 {
            x = w.matmul(x).unwrap().add(b).unwrap().scale(0.5).unwrap();
            if k == 7 {
                held = Some(x.value_rc());
            }
        }
        let y = x.dot_real(x).unwrap();
        let g = t.grad(y, &[w]).unwrap().remove(0);
        (x.value(), g, held.expect("kept at step 7"))
    }

    #[test]
    fn reused_buffers_change_no_result() {
        // The second and third tapes on this thread take the first one's buffers from the
        // pool (crate::pool); their values and gradients must be bit for bit the same, and
        // a value held past its tape must not be handed out again.
        for dtype in [DType::F64, DType::C64] {
            crate::pool::release();
            let (v1, g1, h1) = pooled_chain(dtype);
            let snapshot = (*h1).clone();
            assert!(
                crate::pool::held_bytes() > 0,
                "the first tape gave its buffers back"
            );
            let (v2, g2, _) = pooled_chain(dtype);
            let (v3, g3, _) = pooled_chain(dtype);
            for (a, b) in [(&v1, &v2), (&v1, &v3), (&g1, &g2), (&g1, &g3)] {
                assert_eq!(a.rel_diff(b).unwrap(), 0.0, "{dtype}");
            }
            assert_eq!(
                h1.rel_diff(&snapshot).unwrap(),
                0.0,
                "{dtype}: a held value changed"
            );
        }
    }

    #[test]
    fn gradient_accumulates_over_reuse() {
        // y = Σ (x ∘ x ∘ x) uses x three times: dy/dx = 3x².
        let t = Tape::new();
        let xv = real_matrix(2, 2, 1);
        let x = t.leaf(xv.clone()).unwrap();
        let y = x.mul(x).unwrap().mul(x).unwrap().sum(Axis::All).unwrap();
        let g = t.grad(y, &[x]).unwrap();
        let (g, xr) = (g[0].as_real().unwrap(), xv.as_real().unwrap().clone());
        for i in 0..2 {
            for j in 0..2 {
                assert!((g[(i, j)] - 3.0 * xr[(i, j)].powi(2)).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn constants_and_unrelated_leaves_get_zero_and_no_record() {
        let t = Tape::new();
        let c = t.constant(real_matrix(2, 2, 1)).unwrap();
        let d = c.matmul(c).unwrap();
        assert!(!d.requires_grad(), "ops on constants are not recorded");
        let x = t.leaf(real_matrix(2, 2, 2)).unwrap();
        let unused = t.leaf(real_matrix(3, 1, 3)).unwrap();
        let y = x.matmul(d).unwrap().trace().unwrap();
        let g = t.grad(y, &[x, unused]).unwrap();
        assert_eq!(g[1].max_abs(), 0.0);
        assert_eq!(g[1].shape(), (3, 1));
        let len = t.len();
        let _ = t.grad(y, &[x]).unwrap();
        assert_eq!(t.len(), len, "a detached backward leaves no nodes behind");
    }

    #[test]
    fn second_order_by_grad_of_grad_closed_form() {
        // f(x) = Σ x³ (1×1 x): f' = 3x², f'' = 6x.
        let t = Tape::new();
        let x = t.leaf(Value::scalar(1.5)).unwrap();
        let y = x.powf(3.0).unwrap();
        let g = t.grad_graph(y, &[x]).unwrap()[0];
        assert!((g.value().scalar_real().unwrap() - 6.75).abs() < 1e-14);
        let h = t.grad(g, &[x]).unwrap();
        assert!((h[0].scalar_real().unwrap() - 9.0).abs() < 1e-14);
    }

    #[test]
    fn forward_mode_with_several_inputs() {
        // y = A B: ẏ = Ȧ B + A Ḃ.
        let t = Tape::new();
        let (av, bv) = (real_matrix(2, 3, 1), real_matrix(3, 2, 2));
        let (adot, bdot) = (real_matrix(2, 3, 3), real_matrix(3, 2, 4));
        let (a, b) = (t.leaf(av.clone()).unwrap(), t.leaf(bv.clone()).unwrap());
        let y = a.matmul(b).unwrap();
        let yd = t
            .jvp(&[a, b], &[adot.clone(), bdot.clone()], &[y])
            .unwrap()
            .remove(0);
        let want = adot.as_real().unwrap() * bv.as_real().unwrap()
            + av.as_real().unwrap() * bdot.as_real().unwrap();
        assert!(yd.rel_diff(&Value::Real(want)).unwrap() < 1e-15);
        // forward-over-forward: the recorded tangent is itself differentiable
        let ad = t.constant(adot).unwrap();
        let yd = t.jvp_graph(&[a], &[ad], &[y]).unwrap()[0];
        let s = yd.sum(Axis::All).unwrap();
        let g = t.grad(s, &[b]).unwrap();
        assert_eq!(g[0].shape(), (3, 2));
    }

    #[test]
    fn complex_vjp_pairs_with_real_inner_product() {
        let t = Tape::new();
        let z = t.leaf(complex_matrix(2, 2, 1)).unwrap();
        let y = z.matmul(z).unwrap();
        let g = t.vjp(&[y], &[complex_matrix(2, 2, 2)], &[z]).unwrap();
        assert_eq!(g[0].dtype(), DType::C64);
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        // empty values are valid leaves
        assert_eq!(
            t.leaf(Value::zeros(DType::F64, 0, 3)).unwrap().shape(),
            (0, 3)
        );
        let nan = Value::Real(faer::mat![[1.0, f64::NAN]]);
        assert!(matches!(
            t.leaf(nan.clone()),
            Err(EngineError::NonFinite { .. })
        ));
        assert!(matches!(
            t.constant(Value::Real(faer::mat![[f64::INFINITY]])),
            Err(EngineError::NonFinite { .. })
        ));
        let x = t.leaf(real_matrix(2, 2, 1)).unwrap();
        assert!(matches!(
            t.grad(x, &[x]),
            Err(EngineError::NotScalar {
                op: "grad",
                shape: (2, 2),
                ..
            })
        ));
        let z = t.leaf(complex_matrix(1, 1, 1)).unwrap();
        assert!(matches!(
            t.grad(z, &[z]),
            Err(EngineError::NotScalar { .. })
        ));
        assert!(matches!(
            t.vjp(&[x], &[real_matrix(2, 3, 1)], &[x]),
            Err(EngineError::ShapeMismatch { op: "vjp", .. })
        ));
        assert!(t.vjp(&[x], &[nan], &[x]).is_err());
        assert!(matches!(
            t.vjp(&[x], &[], &[x]),
            Err(EngineError::InvalidArgument { op: "vjp", .. })
        ));
        assert!(matches!(
            t.jvp(&[x], &[complex_matrix(2, 2, 1)], &[x]),
            Err(EngineError::DTypeMismatch { op: "jvp", .. })
        ));
        let other = Tape::new();
        let o = other.leaf(real_matrix(1, 1, 1)).unwrap();
        assert!(matches!(
            t.grad(o, &[x]),
            Err(EngineError::ForeignVar { .. })
        ));
        assert!(matches!(
            crate::same_tape("f", &[]),
            Err(EngineError::InvalidArgument { .. })
        ));
    }

    /// A toy `sort` of two numbers: at a tie the sorted pair is not differentiable, the
    /// JVP returns the average and registers the direction (1, −1) as a gauge. Forward
    /// mode must then succeed for a symmetric consumer (the sum) and refuse for the
    /// minimum, as the reverse-mode rule does.
    #[test]
    fn forward_mode_checks_registered_invariances() {
        use crate::{Invariance, InvarianceMode, Op, OpCtx, Var};
        struct Sort2;
        impl Op for Sort2 {
            fn name(&self) -> &'static str {
                "sort2"
            }
            fn vjp<'t>(
                &self,
                _: &OpCtx<'_, 't>,
                ct: &[Option<Var<'t>>],
            ) -> crate::Result<Vec<Option<Var<'t>>>> {
                Ok(vec![ct[0]])
            }
            fn jvp<'t>(
                &self,
                ctx: &OpCtx<'_, 't>,
                t: &[Option<Var<'t>>],
            ) -> crate::Result<Vec<Option<Var<'t>>>> {
                let Some(d) = t[0] else { return Ok(vec![None]) };
                let avg = d.sum(Axis::All)?.scale(0.5)?.broadcast_to(2, 1)?;
                ctx.require_invariance(Invariance {
                    directions: vec![vec![Some(Value::Real(faer::mat![[1.0], [-1.0]]))]],
                    mode: InvarianceMode::Numeric { rtol: 1e-8 },
                    error: Box::new(|_, size| EngineError::NotDifferentiable {
                        op: "sort2",
                        message: format!("tie (size {size:e})"),
                    }),
                });
                Ok(vec![Some(avg)])
            }
        }
        let t = Tape::new();
        let x = t.leaf(Value::Real(faer::mat![[2.0], [2.0]])).unwrap();
        let y = t.record1(std::rc::Rc::new(Sort2), &[x], x.value()).unwrap();
        let s = y.sum(Axis::All).unwrap();
        let dx = Value::Real(faer::mat![[1.0], [3.0]]);
        let ds = t.jvp(&[x], std::slice::from_ref(&dx), &[s]).unwrap();
        assert_eq!(ds[0].scalar_real(), Some(4.0));
        let first = y.slice(0..1, 0..1).unwrap();
        assert!(matches!(
            t.jvp(&[x], std::slice::from_ref(&dx), &[first]),
            Err(EngineError::NotDifferentiable { op: "sort2", .. })
        ));
        // the output itself is not invariant either
        assert!(t.jvp(&[x], &[dx], &[y]).is_err());
        // a registration in a reverse sweep is ignored
        assert!(t.grad(s, &[x]).is_ok());
    }

    /// Issue 7, bug 3: differentiating with respect to a constant used to return zeros.
    #[test]
    fn gradient_with_respect_to_a_constant_is_an_error() {
        let t = Tape::new();
        let x = t.leaf(real_matrix(2, 2, 1)).unwrap();
        let c = t.constant(real_matrix(2, 2, 2)).unwrap();
        let from_const = c.matmul(c).unwrap();
        let y = x.matmul(c).unwrap().trace().unwrap();
        for wrt in [c, from_const, x.detach()] {
            assert!(matches!(
                t.grad(y, &[x, wrt]),
                Err(EngineError::ConstantInput {
                    op: "grad",
                    index: 1
                })
            ));
        }
        assert!(matches!(
            t.vjp(&[y], &[Value::scalar(1.0)], &[c]),
            Err(EngineError::ConstantInput {
                op: "vjp",
                index: 0
            })
        ));
        assert!(matches!(
            t.grad_graph(y, &[c]),
            Err(EngineError::ConstantInput {
                op: "grad_graph",
                ..
            })
        ));
        assert!(matches!(
            t.jvp(&[c], &[real_matrix(2, 2, 3)], &[y]),
            Err(EngineError::ConstantInput {
                op: "jvp",
                index: 0
            })
        ));
        let cv = t.constant(real_matrix(2, 2, 3)).unwrap();
        assert!(matches!(
            t.jvp_graph(&[c], &[cv], &[y]),
            Err(EngineError::ConstantInput {
                op: "jvp_graph",
                ..
            })
        ));
        // the message says what to do
        let msg = t.grad(y, &[c]).unwrap_err().to_string();
        assert!(msg.contains("Tape::leaf"), "{msg}");
    }

    /// Issue 7, bug 6: an op that records no output is an error (it made an `expect`
    /// reachable in the spectral crate through a user op).
    #[test]
    fn recording_no_output_is_an_error() {
        struct Nothing;
        impl crate::Op for Nothing {
            fn name(&self) -> &'static str {
                "nothing"
            }
            fn vjp<'t>(
                &self,
                _: &crate::OpCtx<'_, 't>,
                _: &[Option<crate::Var<'t>>],
            ) -> crate::Result<Vec<Option<crate::Var<'t>>>> {
                Ok(vec![None])
            }
            fn jvp<'t>(
                &self,
                _: &crate::OpCtx<'_, 't>,
                _: &[Option<crate::Var<'t>>],
            ) -> crate::Result<Vec<Option<crate::Var<'t>>>> {
                Ok(vec![])
            }
        }
        let t = Tape::new();
        let x = t.leaf(real_matrix(1, 1, 1)).unwrap();
        assert!(matches!(
            t.record(std::rc::Rc::new(Nothing), &[x], vec![]),
            Err(EngineError::InvalidArgument { op: "nothing", .. })
        ));
    }
}
