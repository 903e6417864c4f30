//! A per-thread pool of value buffers and the shared boxes values live in on a tape.
//!
//! Every op output is a fresh `faer::Mat` in a fresh `Rc`. faer aligns its buffers to a
//! cache line, and allocators serve aligned requests on a slow path (glibc's `memalign`,
//! mimalloc's generic aligned path). For small matrices the allocation, zero-fill and free
//! cost more than the op: with glibc's allocator a chain of 2×2 products, sums and
//! scalings ran 1.5× faster with this pool. Large buffers are served by `mmap` and come
//! back as fresh pages, faulted in on every call: A·B·C with n = 128 ran 2–2.5× faster.
//! (docs/PERFORMANCE.md gives the figures and commands; with mimalloc the gain is small.)
//!
//! So a tape gives each value that nothing else holds back, box and buffer, when it is
//! dropped or truncated (the temporaries of `grad`, `vjp`, `jvp`), and `Tape::record`
//! and the ops that build outputs (`matmul`, the entrywise and structural ops, the
//! reductions, `Value::clone`) take from here first. Rules and forwards give their own
//! temporaries back with [`give`] and [`give_value`]. A buffer is reused only for the same
//! dtype and shape, and only matrices of at most [`MAX_POOLED_ENTRIES`] entries keep their
//! buffer.
//!
//! What the pool holds is bounded per thread ([`MAX_HELD_BYTES`]); [`release`] frees it
//! at once, and [`held_bytes`] tells how much it holds. Only tapes dropped (and temporaries
//! given) on a thread fill that thread's pool. A buffer taken from the pool is filled
//! (zeros, or the values of the op; a GEMM's `Accum::Replace` writes every entry) before
//! anyone reads it, so its old contents never show.
//!
//! Each thread also keeps one workspace for faer's decompositions ([`with_scratch`], at most
//! [`MAX_KEPT_SCRATCH_BYTES`]), so that repeated small eigh and SVD calls do not allocate
//! one per call; [`held_bytes`] counts it and [`release`] frees it.

use std::cell::RefCell;
use std::rc::Rc;

use faer::Mat;

use crate::value::{DType, Scalar, Value};

/// Matrices with more entries than this are never kept (256 × 256: 512 KiB real, 1 MiB
/// complex).
pub const MAX_POOLED_ENTRIES: usize = 1 << 16;

/// The most bytes one thread's pool holds (buffers, and the shared boxes values live in);
/// what is given back beyond it is freed.
pub const MAX_HELD_BYTES: usize = 8 << 20;

/// Distinct (dtype, shape) pairs kept per thread; buffers of further shapes are freed.
const MAX_SHAPES: usize = 64;

/// Bytes of one shared box a tape keeps a value in (two counts and the value).
const BOX_BYTES: usize = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Value>();

/// Values of one dtype and shape, each in the shared box it lived in on its tape.
struct Shelf {
    dtype: DType,
    nrows: usize,
    ncols: usize,
    free: Vec<Rc<Value>>,
}

struct Pool {
    shelves: Vec<Shelf>,
    /// Boxes holding an empty value, to put a new value in without allocating.
    boxes: Vec<Rc<Value>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            shelves: Vec::new(),
            boxes: Vec::new(),
            bytes: 0,
        })
    };
}

fn empty() -> Value {
    Value::Real(Mat::new())
}

fn buffer_bytes(dtype: DType, nrows: usize, ncols: usize) -> usize {
    nrows
        * ncols
        * match dtype {
            DType::F64 => 8,
            DType::C64 => 16,
        }
}

fn poolable(nrows: usize, ncols: usize) -> bool {
    let entries = nrows.saturating_mul(ncols);
    entries != 0 && entries <= MAX_POOLED_ENTRIES
}

/// Runs `f` on this thread's pool; `None` during thread teardown or a nested call.
fn with_pool<R>(f: impl FnOnce(&mut Pool) -> R) -> Option<R> {
    POOL.try_with(|p| p.try_borrow_mut().ok().map(|mut p| f(&mut p)))
        .ok()
        .flatten()
}

/// A buffer of `nrows × ncols` entries of `T` from this thread's pool, with stale
/// contents; `None` when the pool has none of that shape.
fn take<T: Scalar>(nrows: usize, ncols: usize) -> Option<Mat<T>> {
    if !poolable(nrows, ncols) {
        return None;
    }
    let mut out = None;
    with_pool(|p| {
        let Some(shelf) = p
            .shelves
            .iter_mut()
            .find(|s| s.dtype == T::DTYPE && s.nrows == nrows && s.ncols == ncols)
        else {
            return;
        };
        let Some(mut b) = shelf.free.pop() else {
            return;
        };
        // every box on a shelf is unshared and holds its shelf's dtype (see `recycle`)
        p.bytes -= buffer_bytes(T::DTYPE, nrows, ncols);
        match Rc::get_mut(&mut b).and_then(T::unwrap_mut) {
            Some(m) => {
                out = Some(std::mem::replace(m, Mat::new()));
                p.boxes.push(b);
            }
            // not reached; the box is freed
            None => p.bytes -= BOX_BYTES,
        }
    });
    out
}

/// `v` in a shared box, reusing an empty box from this thread's pool when there is one.
pub(crate) fn wrap(v: Value) -> Rc<Value> {
    match with_pool(|p| {
        let b = p.boxes.pop()?;
        p.bytes -= BOX_BYTES;
        Some(b)
    })
    .flatten()
    {
        Some(mut b) => match Rc::get_mut(&mut b) {
            Some(slot) => {
                *slot = v;
                b
            }
            None => Rc::new(v),
        },
        None => Rc::new(v),
    }
}

/// Drops one holder of `b`. When it was the last one, keeps the box, and the value's
/// buffer when it is small, for reuse on this thread (or frees them when the pool is full).
pub(crate) fn recycle(mut b: Rc<Value>) {
    let Some(v) = Rc::get_mut(&mut b) else {
        return;
    };
    let (nrows, ncols) = v.shape();
    let dtype = v.dtype();
    let mut b = Some(b);
    with_pool(|p| {
        if poolable(nrows, ncols) {
            let bytes = buffer_bytes(dtype, nrows, ncols) + BOX_BYTES;
            if p.bytes + bytes > MAX_HELD_BYTES {
                return;
            }
            let i = match p
                .shelves
                .iter()
                .position(|s| s.dtype == dtype && s.nrows == nrows && s.ncols == ncols)
            {
                Some(i) => i,
                None if p.shelves.len() < MAX_SHAPES => {
                    p.shelves.push(Shelf {
                        dtype,
                        nrows,
                        ncols,
                        free: Vec::new(),
                    });
                    p.shelves.len() - 1
                }
                None => return,
            };
            if let Some(b) = b.take() {
                p.shelves[i].free.push(b);
                p.bytes += bytes;
            }
        } else if p.bytes + BOX_BYTES <= MAX_HELD_BYTES {
            if let Some(mut bx) = b.take() {
                if let Some(v) = Rc::get_mut(&mut bx) {
                    // the large buffer is freed here, the box is kept
                    *v = empty();
                    p.boxes.push(bx);
                    p.bytes += BOX_BYTES;
                }
            }
        }
    });
}

/// Gives a matrix its caller no longer needs to this thread's pool, as a dropped tape gives
/// its values: the next [`for_overwrite`], [`zeros`], [`from_cols`], [`from_fn`] or
/// [`owned`] of its dtype and shape on this thread reuses the buffer instead of allocating
/// (and zero-filling) a new one. A matrix above [`MAX_POOLED_ENTRIES`] entries, an empty one,
/// or one the full pool has no room for is freed, as a drop would.
///
/// For the temporaries of rules and forwards that run in loops (a rule's `UᴴŪ`, a batch's
/// per-block copies). The contents are left as they are: whatever takes the buffer
/// overwrites every entry before reading it.
pub fn give<T: Scalar>(m: Mat<T>) {
    if poolable(m.nrows(), m.ncols()) {
        recycle(wrap(T::wrap(m)));
    }
}

/// [`give`] for a [`Value`] of either dtype.
pub fn give_value(v: Value) {
    if poolable(v.nrows(), v.ncols()) {
        recycle(wrap(v));
    }
}

/// A zero matrix, from this thread's pool when it has a buffer of this dtype and shape.
pub fn zeros<T: Scalar>(nrows: usize, ncols: usize) -> Mat<T> {
    match take::<T>(nrows, ncols) {
        Some(mut m) => {
            m.fill(T::from_f64(0.0));
            m
        }
        None => Mat::zeros(nrows, ncols),
    }
}

/// A matrix whose every entry the caller overwrites before anyone reads it (a GEMM with
/// `Accum::Replace`): a buffer from this thread's pool with its old contents (earlier
/// values of this thread's tapes, or temporaries given back by [`give`]), or zeros when the
/// pool has none. Skips the
/// zero-fill [`zeros`] does, which for n = 128 is a 128 KiB write per product.
///
/// The contents are unspecified (finite): use it only for an output whose every entry is
/// written before it is read or returned.
pub fn for_overwrite<T: Scalar>(nrows: usize, ncols: usize) -> Mat<T> {
    take::<T>(nrows, ncols).unwrap_or_else(|| Mat::zeros(nrows, ncols))
}

/// A matrix built column by column: `f(j, col)` fills column `j` (a contiguous slice of
/// `nrows` entries), into a buffer from this thread's pool when it has one of this dtype
/// and shape. Loops over slices need no per-entry index check, so they run several times
/// faster than [`from_fn`] with indexing closures (an add and a scaling of 256×256
/// matrices: 28 µs against 95; docs/PERFORMANCE.md, twelfth round).
///
/// `f` must write every entry of its column: a pooled buffer holds stale (finite) values.
pub fn from_cols<T: Scalar>(
    nrows: usize,
    ncols: usize,
    mut f: impl FnMut(usize, &mut [T]),
) -> Mat<T> {
    let mut m = for_overwrite::<T>(nrows, ncols);
    for j in 0..ncols {
        f(j, m.col_as_slice_mut(j));
    }
    m
}

/// `Mat::from_fn`, into a buffer from this thread's pool when it has one of this dtype and
/// shape.
pub fn from_fn<T: Scalar>(
    nrows: usize,
    ncols: usize,
    mut f: impl FnMut(usize, usize) -> T,
) -> Mat<T> {
    match take::<T>(nrows, ncols) {
        Some(mut m) => {
            for j in 0..ncols {
                for (i, x) in m.col_as_slice_mut(j).iter_mut().enumerate() {
                    *x = f(i, j);
                }
            }
            m
        }
        None => Mat::from_fn(nrows, ncols, f),
    }
}

/// An owned copy of a view (a transpose, an adjoint, a block), into a buffer from this
/// thread's pool when it has one of the view's dtype and shape.
pub fn owned<T: Scalar, R: faer::traits::Conjugate<Canonical = T>>(
    v: faer::MatRef<'_, R>,
) -> Mat<T> {
    match take::<T>(v.nrows(), v.ncols()) {
        Some(mut c) => {
            c.copy_from(v);
            c
        }
        None => v.to_owned(),
    }
}

/// A copy of the view `v` (typically one block of a tall stack), into a buffer from this
/// thread's pool when it has one of its shape. Contiguous columns are copied as slices
/// (`memcpy`), others by faer.
pub fn copy_view<T: Scalar>(v: faer::MatRef<'_, T>) -> Mat<T> {
    let mut c = for_overwrite::<T>(v.nrows(), v.ncols()); // every entry copied below
    copy_cols(c.as_mut(), v);
    c
}

/// `dst ← src`, column by column as slices when both have contiguous columns (a block of a
/// tall stack from or into a small matrix), by faer otherwise.
///
/// # Errors
/// [`crate::EngineError::ShapeMismatch`] when the shapes differ (nothing is written).
pub fn copy_into<T: Scalar>(
    dst: faer::MatMut<'_, T>,
    src: faer::MatRef<'_, T>,
) -> crate::Result<()> {
    if dst.shape() != src.shape() {
        return Err(crate::EngineError::ShapeMismatch {
            op: "copy_into",
            lhs: dst.shape(),
            rhs: src.shape(),
            hint: "the destination must have the source's shape",
        });
    }
    copy_cols(dst, src);
    Ok(())
}

/// [`copy_into`] for equal shapes.
fn copy_cols<T: Scalar>(mut dst: faer::MatMut<'_, T>, src: faer::MatRef<'_, T>) {
    for j in 0..src.ncols() {
        let s = src.col(j);
        let copied = match (
            dst.as_mut().col_mut(j).try_as_col_major_mut(),
            s.try_as_col_major(),
        ) {
            (Some(d), Some(s)) => {
                d.as_slice_mut().copy_from_slice(s.as_slice());
                true
            }
            _ => false,
        };
        if !copied {
            dst.as_mut().col_mut(j).copy_from(s);
        }
    }
}

/// Below this many entries [`transposed`] leaves the copy to faer (whose transposed copy
/// is fastest while the matrix sits in L1: 0.3–0.4 ns per entry at 64×64 against 0.65 for
/// the tiles); from it on, the tiles (0.66 ns per entry at 256×256, 1024×256 and
/// 256×1024 against faer's 1.9–2.9, whose strided reads of power-of-two columns miss;
/// docs/PERFORMANCE.md, eleventh round).
pub const TRANSPOSE_TILED_MIN_ENTRIES: usize = 1 << 13;

/// `xᵀ`, or `xᴴ` when `conj`, into a buffer from this thread's pool when it has one.
/// A large matrix with contiguous columns is copied in tiles of 8 of its columns by 64 of
/// its rows: the 8 columns' cache lines stay in L1 while each output column's 8 entries are
/// written (contiguous), whatever the stride between columns. Every entry is copied (and
/// conjugated) exactly, so the result equals faer's `to_owned` of the transposed view.
pub fn transposed<T: Scalar>(x: faer::MatRef<'_, T>, conj: bool) -> Mat<T> {
    const COLS: usize = 8;
    const ROWS: usize = 64;
    let (m, n) = x.shape();
    if m * n < TRANSPOSE_TILED_MIN_ENTRIES || x.row_stride() != 1 {
        return if conj {
            owned(x.adjoint())
        } else {
            owned(x.transpose())
        };
    }
    let col = |j: usize| -> &[T] {
        x.col(j)
            .try_as_col_major()
            .expect("unit row stride: contiguous columns")
            .as_slice()
    };
    // every entry is written below
    let mut out = for_overwrite::<T>(n, m);
    for jb in (0..n).step_by(COLS) {
        let je = (jb + COLS).min(n);
        for ib in (0..m).step_by(ROWS) {
            let ie = (ib + ROWS).min(m);
            let cols: [&[T]; COLS] = std::array::from_fn(|t| {
                if jb + t < je {
                    &col(jb + t)[ib..ie]
                } else {
                    &[]
                }
            });
            for i in ib..ie {
                let dst = &mut out.col_as_slice_mut(i)[jb..je];
                for (d, c) in dst.iter_mut().zip(&cols) {
                    let v = c[i - ib];
                    *d = if conj { v.cj() } else { v };
                }
            }
        }
    }
    out
}

/// A copy of `m`, into a pooled buffer when there is one of its shape.
pub(crate) fn copy<T: Scalar>(m: &Mat<T>) -> Mat<T> {
    match take::<T>(m.nrows(), m.ncols()) {
        Some(mut c) => {
            for j in 0..m.ncols() {
                c.col_as_slice_mut(j).copy_from_slice(m.col_as_slice(j));
            }
            c
        }
        None => m.clone(),
    }
}

/// The largest faer workspace [`with_scratch`] keeps per thread between calls (bytes).
pub const MAX_KEPT_SCRATCH_BYTES: usize = 1 << 20;

/// A faer workspace kept between calls, with the requirement it was made for.
struct Scratch {
    buf: faer::dyn_stack::MemBuffer,
    req: faer::dyn_stack::StackReq,
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Runs `f` on a workspace of at least `req` (faer's decompositions take one): the one this
/// thread kept from an earlier call when it is large enough, else a new one. Workspaces of
/// at most [`MAX_KEPT_SCRATCH_BYTES`] are kept for the next call on this thread, so small
/// repeated decompositions (an eigh of order 4: an allocation of ≈ 2 KiB and its free) do
/// not allocate. A call made while the kept workspace is in use (a nested one, or another
/// task rayon runs on this thread meanwhile) gets a new one.
pub fn with_scratch<R>(
    req: faer::dyn_stack::StackReq,
    f: impl FnOnce(&mut faer::dyn_stack::MemStack) -> R,
) -> R {
    let kept = SCRATCH
        .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok()
        .flatten();
    // alignments are powers of two: a larger one is a multiple of a smaller one
    let mut s = match kept {
        Some(s)
            if s.req.size_bytes() >= req.size_bytes()
                && s.req.align_bytes() >= req.align_bytes() =>
        {
            s
        }
        other => {
            // too small: it stays kept unless this call's workspace replaces it
            if let Some(o) = other {
                keep_scratch(o);
            }
            Scratch {
                buf: faer::dyn_stack::MemBuffer::new(req),
                req,
            }
        }
    };
    let out = f(faer::dyn_stack::MemStack::new(&mut s.buf));
    if s.req.size_bytes() <= MAX_KEPT_SCRATCH_BYTES {
        keep_scratch(s);
    }
    out
}

/// Keeps `s` for this thread unless it already keeps a workspace at least as large.
fn keep_scratch(s: Scratch) {
    let _ = SCRATCH.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            if slot
                .as_ref()
                .is_none_or(|k| k.req.size_bytes() < s.req.size_bytes())
            {
                *slot = Some(s);
            }
        }
    });
}

/// Bytes this thread's pool holds now (value buffers, boxes, and the kept faer workspace).
pub fn held_bytes() -> usize {
    let values = POOL
        .try_with(|p| p.try_borrow().map(|p| p.bytes).unwrap_or(0))
        .unwrap_or(0);
    let scratch = SCRATCH
        .try_with(|s| {
            s.try_borrow()
                .map(|s| s.as_ref().map_or(0, |k| k.buf.len()))
                .unwrap_or(0)
        })
        .unwrap_or(0);
    values + scratch
}

/// Frees everything this thread's pool holds (it fills again as tapes drop).
pub fn release() {
    let _ = with_pool(|p| {
        p.shelves = Vec::new();
        p.boxes = Vec::new();
        p.bytes = 0;
    });
    let _ = SCRATCH.try_with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            *s = None;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::C64;

    fn fresh() {
        release();
        assert_eq!(held_bytes(), 0);
    }

    /// The workspace is kept between calls (same allocation, reported by `held_bytes`), a
    /// smaller request reuses it, a larger one replaces it, one above the cap is not kept,
    /// a nested call gets its own, and `release` frees it.
    #[test]
    fn a_scratch_workspace_is_kept_reused_and_bounded() {
        use faer::dyn_stack::StackReq;
        fresh();
        let addr = |req: StackReq| with_scratch(req, |st| st.as_ptr() as usize);
        let small = StackReq::new::<f64>(64);
        let a = addr(small);
        let kept = held_bytes();
        assert!(kept >= 512, "kept {kept} bytes");
        assert_eq!(
            addr(StackReq::new::<f64>(16)),
            a,
            "a smaller request reuses it"
        );
        assert_eq!(held_bytes(), kept);
        // a nested call while it is in use gets a new workspace; one of the two is kept
        let (outer, inner) = with_scratch(small, |st| {
            let outer = st.as_ptr() as usize;
            (outer, addr(small))
        });
        assert_eq!(outer, a);
        assert_ne!(inner, a);
        assert_eq!(held_bytes(), kept);
        let again = addr(small);
        assert!(again == a || again == inner);
        // a larger request gets (and leaves) a larger workspace
        addr(StackReq::new::<f64>(4096));
        assert!(held_bytes() >= 4096 * 8);
        // above the cap: used once and freed
        let big = StackReq::new::<u8>(MAX_KEPT_SCRATCH_BYTES + 1);
        let held = held_bytes();
        assert!(with_scratch(big, |st| st.len_bytes() > MAX_KEPT_SCRATCH_BYTES));
        assert_eq!(held_bytes(), held);
        release();
        assert_eq!(held_bytes(), 0);
    }

    #[test]
    fn a_buffer_comes_back_for_its_own_shape_and_dtype_only() {
        fresh();
        let mut m = Mat::<f64>::zeros(3, 2);
        m[(2, 1)] = 7.0;
        recycle(Rc::new(Value::Real(m)));
        assert_eq!(held_bytes(), 48 + BOX_BYTES);
        // other shapes and the other dtype get nothing
        assert!(take::<f64>(2, 3).is_none());
        assert!(take::<C64>(3, 2).is_none());
        // the buffer comes back once, with its stale entry; its box stays for `wrap`
        let back = take::<f64>(3, 2).expect("the buffer given back");
        assert_eq!(back[(2, 1)], 7.0);
        assert_eq!(held_bytes(), BOX_BYTES);
        assert!(take::<f64>(3, 2).is_none());
        let w = wrap(Value::Real(back));
        assert_eq!(held_bytes(), 0);
        assert_eq!(w.as_real().map(|m| m[(2, 1)]), Some(7.0));
    }

    /// A given matrix comes back for its own dtype and shape (same allocation, stale
    /// entries); an empty one and one above the size limit are not kept; the pool's bound
    /// holds.
    #[test]
    fn a_given_temporary_is_reused_and_bounded() {
        fresh();
        let mut m = Mat::<C64>::zeros(4, 3);
        m[(3, 2)] = C64::new(1.0, -2.0);
        let ptr = m.as_ptr() as usize;
        give(m);
        assert_eq!(held_bytes(), 4 * 3 * 16 + BOX_BYTES);
        assert!(take::<f64>(4, 3).is_none());
        let back = for_overwrite::<C64>(4, 3);
        assert_eq!(back.as_ptr() as usize, ptr);
        assert_eq!(back[(3, 2)], C64::new(1.0, -2.0));
        assert_eq!(held_bytes(), BOX_BYTES);
        // a zero-filled request into the given buffer
        give_value(Value::Complex(back));
        assert_eq!(zeros::<C64>(4, 3), Mat::<C64>::zeros(4, 3));
        fresh();
        give(Mat::<f64>::zeros(0, 5));
        give(Mat::<f64>::zeros(MAX_POOLED_ENTRIES + 1, 1));
        assert_eq!(held_bytes(), 0);
        // up to the bound and no further: 8 KiB each
        let each = 32 * 32 * 8 + BOX_BYTES;
        for _ in 0..MAX_HELD_BYTES / each + 10 {
            give(Mat::<f64>::zeros(32, 32));
        }
        assert!(held_bytes() <= MAX_HELD_BYTES);
        assert!(held_bytes() + each > MAX_HELD_BYTES);
        release();
    }

    #[test]
    fn a_shared_value_is_not_taken() {
        fresh();
        let b = Rc::new(Value::Real(Mat::from_fn(2, 2, |i, j| (i + j) as f64)));
        let other = Rc::clone(&b);
        recycle(b);
        assert_eq!(held_bytes(), 0);
        assert!(take::<f64>(2, 2).is_none());
        assert_eq!(other.as_real().map(|m| m[(1, 1)]), Some(2.0));
        // the last holder gives it back
        recycle(other);
        assert_eq!(held_bytes(), 32 + BOX_BYTES);
    }

    #[test]
    fn pooled_buffers_are_overwritten_before_use() {
        fresh();
        recycle(Rc::new(Value::Real(Mat::from_fn(2, 2, |_, _| 5.0))));
        let z = zeros::<f64>(2, 2);
        assert_eq!(z, Mat::<f64>::zeros(2, 2));
        recycle(Rc::new(Value::Complex(Mat::from_fn(2, 3, |_, _| {
            C64::new(1.0, 1.0)
        }))));
        let f = from_fn::<C64>(2, 3, |i, j| C64::new(i as f64, j as f64));
        assert_eq!(f, Mat::from_fn(2, 3, |i, j| C64::new(i as f64, j as f64)));
        recycle(Rc::new(Value::Real(Mat::from_fn(3, 1, |_, _| -1.0))));
        let src = Mat::from_fn(3, 1, |i, _| i as f64);
        assert_eq!(copy(&src), src);
        // a transpose and an adjoint into stale buffers of their (transposed) shape
        let z = Mat::from_fn(2, 3, |i, j| C64::new(i as f64, 1.0 + j as f64));
        recycle(Rc::new(Value::Complex(Mat::from_fn(3, 2, |_, _| {
            C64::new(9.0, 9.0)
        }))));
        let zh: Mat<C64> = owned(z.adjoint());
        assert_eq!(zh, Mat::from_fn(3, 2, |i, j| z[(j, i)].conj()));
        recycle(Rc::new(Value::Real(Mat::from_fn(3, 1, |_, _| 9.0))));
        let r = Mat::from_fn(1, 3, |_, j| j as f64);
        let rt: Mat<f64> = owned(r.transpose());
        assert_eq!(rt, Mat::from_fn(3, 1, |i, _| i as f64));
        // column by column into a stale buffer: each column gets its own index
        recycle(Rc::new(Value::Real(Mat::from_fn(3, 2, |_, _| 9.0))));
        let c = from_cols::<f64>(3, 2, |j, col| {
            assert_eq!(col.len(), 3);
            for (i, x) in col.iter_mut().enumerate() {
                *x = (10 * i + j) as f64;
            }
        });
        assert_eq!(c, Mat::from_fn(3, 2, |i, j| (10 * i + j) as f64));
        assert_eq!(held_bytes(), 6 * BOX_BYTES);
    }

    /// The tiled transpose equals the definition entry by entry: shapes below and above
    /// the tiling threshold, edges that are not multiples of the 8×64 tile, real and
    /// complex, transpose and adjoint, into stale pooled buffers; a view without unit row
    /// stride takes faer's path.
    #[test]
    fn block_copies_in_and_out_of_a_stack() {
        let stack = Mat::from_fn(12, 3, |i, j| (10 * i + j) as f64 - 0.5);
        // a block with contiguous columns (slices), and a transposed view (faer's copy)
        let b = copy_view(stack.as_ref().subrows(3, 3));
        assert_eq!(b, stack.as_ref().subrows(3, 3).to_owned());
        let t = copy_view(stack.as_ref().subrows(6, 3).transpose());
        assert_eq!(t, stack.as_ref().subrows(6, 3).transpose().to_owned());
        // into a block of another stack: only that block is written
        let mut out = Mat::from_fn(12, 3, |_, _| -1.0);
        copy_into(out.as_mut().subrows_mut(9, 3), b.as_ref()).unwrap();
        assert_eq!(out.as_ref().subrows(9, 3), b.as_ref());
        assert!((0..9).all(|i| (0..3).all(|j| out[(i, j)] == -1.0)));
        copy_into(out.as_mut().subrows_mut(0, 3).transpose_mut(), t.as_ref()).unwrap();
        assert_eq!(out.as_ref().subrows(0, 3), stack.as_ref().subrows(6, 3));
        // a shape mismatch is an error and writes nothing
        let before = out.clone();
        let e = copy_into(out.as_mut().subrows_mut(0, 4), b.as_ref()).unwrap_err();
        assert!(matches!(
            e,
            crate::EngineError::ShapeMismatch {
                op: "copy_into",
                ..
            }
        ));
        assert_eq!(out, before);
    }

    #[test]
    fn transposed_copies_every_entry() {
        fn check<T: Scalar>(make: impl Fn(usize, usize) -> T) {
            let big = TRANSPOSE_TILED_MIN_ENTRIES;
            for (m, n) in [
                (3, 5),
                (64, 64),
                (big / 64, 64),
                (130, 67),
                (67, 130),
                (257, 33),
                (9, 1000),
            ] {
                let x = Mat::from_fn(m, n, &make);
                for conj in [false, true] {
                    // a stale buffer of the output's shape, when it can be pooled
                    recycle(Rc::new(T::wrap(Mat::from_fn(n, m, |_, _| {
                        T::from_f64(7.0)
                    }))));
                    let t = transposed(x.as_ref(), conj);
                    assert_eq!(t.shape(), (n, m));
                    for j in 0..m {
                        for i in 0..n {
                            let want = if conj { x[(j, i)].cj() } else { x[(j, i)] };
                            assert!(t[(i, j)] == want, "{m}×{n} conj {conj} ({i}, {j})");
                        }
                    }
                }
            }
            // a transposed view (row stride ≠ 1): faer's copy, the same entries
            let x = Mat::from_fn(40, 300, &make);
            let t = transposed(x.transpose(), true);
            assert_eq!(t.shape(), (40, 300));
            assert!((0..300).all(|j| (0..40).all(|i| t[(i, j)] == x[(i, j)].cj())));
        }
        fresh();
        check(|i, j| (i * 1000 + j) as f64 - 0.5);
        check(|i, j| C64::new((i * 1000 + j) as f64, -(j as f64) - 1.0));
        fresh();
    }

    #[test]
    fn large_buffers_are_freed_and_the_pool_is_bounded() {
        fresh();
        // a large or empty value: only its box is kept
        recycle(Rc::new(Value::Real(Mat::zeros(MAX_POOLED_ENTRIES + 1, 1))));
        recycle(Rc::new(Value::Real(Mat::zeros(0, 5))));
        assert_eq!(held_bytes(), 2 * BOX_BYTES);
        assert!(take::<f64>(MAX_POOLED_ENTRIES + 1, 1).is_none());
        fresh();
        // fill up to the byte cap with the largest pooled shape, then more
        let per = MAX_POOLED_ENTRIES * 8 + BOX_BYTES;
        for _ in 0..MAX_HELD_BYTES / per + 3 {
            recycle(Rc::new(Value::Real(Mat::zeros(MAX_POOLED_ENTRIES, 1))));
        }
        assert_eq!(held_bytes(), (MAX_HELD_BYTES / per) * per);
        fresh();
    }

    #[test]
    fn shapes_beyond_the_cap_are_freed() {
        fresh();
        for n in 1..=MAX_SHAPES + 5 {
            recycle(Rc::new(Value::Real(Mat::zeros(1, n))));
        }
        let kept: usize = (1..=MAX_SHAPES).map(|n| 8 * n + BOX_BYTES).sum();
        assert_eq!(held_bytes(), kept);
        assert!(take::<f64>(1, MAX_SHAPES + 1).is_none());
        assert!(take::<f64>(1, MAX_SHAPES).is_some());
        fresh();
    }
}
