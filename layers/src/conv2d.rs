//! `conv2d` and the pooling of feature maps, on one matrix layout.
//!
//! **Layout.** A batch of `B` feature maps with `C` channels of `H×W` pixels is one
//! `C × (B·H·W)` matrix: row c is channel c; image b occupies columns `b·H·W … (b+1)·H·W − 1`,
//! its pixels row-major (`h·W + w`, PyTorch's flattening). Channel mixing is then a left
//! matmul, a per-channel bias a broadcast column, CReLU a `vcat`, and every engine op
//! composes with a feature map. [`FeatureMaps`] records `(C, B, H, W)`.
//!
//! **conv2d** (cross-correlation, as PyTorch's `conv2d`): kernels `K` are `C_out × (C·kh·kw)`
//! (PyTorch's `weight.reshape(C_out, -1)`: channel, then kernel row, then column);
//! `Y = K · im2col(X)` with `im2col(X)` the `(C·kh·kw) × (B·H_o·W_o)` patch matrix,
//! `H_o = ⌊(H + 2p − d(kh − 1) − 1)/s⌋ + 1`. [`im2col`] is one node written by index
//! arithmetic; it is linear, its VJP is the scatter-add [`col2im`] and its JVP itself, and
//! `col2im`'s rules are `im2col` and itself (`⟨im2col(X), P̄⟩ = ⟨X, col2im(P̄)⟩`), so every
//! order of derivative comes from the engine; the GEMM is faer's.
//!
//! **Pooling.** Average pooling is the mean of a gather; max pooling gathers the first
//! maximiser of each window (padding excluded, as PyTorch's −∞ padding), so its gradient is
//! the subgradient that routes each output's cotangent to that one input; global average
//! pooling returns the `B × C` matrix of per-image channel means (rows are samples, ready for
//! a [`crate::train::Linear`] classifier). Derivation: docs/math/conv2d.md.

use std::rc::Rc;

use faer::Mat;
use matgrad_engine::{Axis, DType, Error, Op, OpCtx, Scalar, Value, Var};

use crate::error::Result;

/// The shape of a batch of feature maps stored as `C × (B·H·W)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureMaps {
    /// Channels C.
    pub channels: usize,
    /// Images B.
    pub batch: usize,
    /// Height H.
    pub height: usize,
    /// Width W.
    pub width: usize,
}

impl FeatureMaps {
    /// The matrix shape `(C, B·H·W)`.
    pub fn matrix_shape(&self) -> (usize, usize) {
        (self.channels, self.batch * self.height * self.width)
    }

    fn check(&self, op: &'static str, x: Var<'_>) -> Result<()> {
        if x.shape() != self.matrix_shape() {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "the input is {:?} but {} channels × {} images of {}×{} are stored as {:?} (channels × images·height·width)",
                    x.shape(),
                    self.channels,
                    self.batch,
                    self.height,
                    self.width,
                    self.matrix_shape()
                ),
            });
        }
        Ok(())
    }
}

/// Window geometry: kernel size, stride, zero padding, dilation (the same in both axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Dilation.
    pub dilation: usize,
}

impl Window {
    /// A `kh×kw` window with stride 1, no padding, no dilation.
    pub fn new(kh: usize, kw: usize) -> Window {
        Window {
            kernel: (kh, kw),
            stride: 1,
            padding: 0,
            dilation: 1,
        }
    }

    /// The output height and width for an `h×w` input.
    ///
    /// # Errors
    /// A zero kernel, stride or dilation, or a window larger than the padded input.
    pub fn output(&self, op: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        let (kh, kw) = self.kernel;
        if kh == 0 || kw == 0 || self.stride == 0 || self.dilation == 0 {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "kernel {kh}×{kw}, stride {} and dilation {} must be positive",
                    self.stride, self.dilation
                ),
            });
        }
        let span = |k: usize| self.dilation * (k - 1) + 1;
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        if span(kh) > ph || span(kw) > pw {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "a {kh}×{kw} window with dilation {} spans {}×{}, larger than the padded {ph}×{pw} input",
                    self.dilation,
                    span(kh),
                    span(kw)
                ),
            });
        }
        Ok((
            (ph - span(kh)) / self.stride + 1,
            (pw - span(kw)) / self.stride + 1,
        ))
    }
}

/// For every window position and kernel offset, the linear index into `vec(X)` (column-major
/// `C × (B·H·W)`), or `None` in the padding. Order: `(c, ki, kj)` fastest-varying first as
/// rows of the patch matrix; output columns `(b, oh, ow)`.
fn patch_index(
    m: &FeatureMaps,
    win: &Window,
    c: usize,
    b: usize,
    (oh, ow): (usize, usize),
    (ki, kj): (usize, usize),
) -> Option<usize> {
    let h = (oh * win.stride + ki * win.dilation).checked_sub(win.padding)?;
    let w = (ow * win.stride + kj * win.dilation).checked_sub(win.padding)?;
    if h >= m.height || w >= m.width {
        return None;
    }
    Some(c + m.channels * (b * m.height * m.width + h * m.width + w))
}

/// `vec(X)` with one zero appended (the target of padded positions), and its zero's index.
fn padded_vec<'t>(x: Var<'t>) -> Result<(Var<'t>, usize)> {
    let n = x.shape().0 * x.shape().1;
    let zero = Value::zeros(x.dtype(), 1, 1);
    Ok((Var::vcat(&[x.vec()?, x.tape().constant(zero)?])?, n))
}

/// A checked patch geometry: input maps, window and output size.
/// Column `j` of a block of an owned matrix, as a slice.
fn column<T: Scalar>(m: faer::MatMut<'_, T>, j: usize) -> &mut [T] {
    m.col_mut(j)
        .try_as_col_major_mut()
        .expect("columns of an owned matrix are contiguous")
        .as_slice_mut()
}

/// Column `j` of a view of an owned matrix, as a slice.
fn column_ref<T: Scalar>(m: faer::MatRef<'_, T>, j: usize) -> &[T] {
    m.col(j)
        .try_as_col_major()
        .expect("columns of an owned matrix are contiguous")
        .as_slice()
}

/// What one entry of an im2col/col2im copy costs, in multiply-adds of a GEMM, for
/// choosing parallelism: a gather or scatter of scattered pixels runs at a few ns per entry
/// (the 72 × 16384 patch matrix of 16 images 8×32×32: ≈ 1.3 ms sequential, 0.65 ms saved
/// on 2 threads), a GEMM at ≈ 27 GMAC/s. 8 is conservative.
const COPY_COST_MACS: usize = 8;

#[derive(Clone, Copy, Debug)]
struct Patches {
    maps: FeatureMaps,
    win: Window,
    out: (usize, usize),
}

impl Patches {
    fn new(op: &'static str, maps: &FeatureMaps, win: &Window) -> Result<Patches> {
        let out = win.output(op, maps.height, maps.width)?;
        Ok(Patches {
            maps: *maps,
            win: *win,
            out,
        })
    }

    /// Rows `C·kh·kw` and columns `B·H_o·W_o` of the patch matrix.
    fn shape(&self) -> (usize, usize) {
        let (kh, kw) = self.win.kernel;
        (
            self.maps.channels * kh * kw,
            self.maps.batch * self.out.0 * self.out.1,
        )
    }

    /// Calls `f(col, offset, pixel)` for every patch column of the images `images`, every
    /// kernel offset `ki·kw + kj` inside the image, and the input pixel column it reads;
    /// `col` and `pixel` count from the first image of the range (its first patch column
    /// `b·H_o·W_o`, its first pixel column `b·H·W`), so that one image or all of them can
    /// be walked with the same loop.
    fn for_each_tap(&self, images: std::ops::Range<usize>, mut f: impl FnMut(usize, usize, usize)) {
        let (m, win) = (&self.maps, &self.win);
        let (ho, wo) = self.out;
        let (kh, kw) = win.kernel;
        let inside = |o: usize, k: usize, n: usize| {
            (o * win.stride + k * win.dilation)
                .checked_sub(win.padding)
                .filter(|&i| i < n)
        };
        for b in 0..images.len() {
            for oh in 0..ho {
                for ow in 0..wo {
                    let col = (b * ho + oh) * wo + ow;
                    for ki in 0..kh {
                        let Some(h) = inside(oh, ki, m.height) else {
                            continue;
                        };
                        for kj in 0..kw {
                            let Some(w) = inside(ow, kj, m.width) else {
                                continue;
                            };
                            f(col, ki * kw + kj, b * m.height * m.width + h * m.width + w);
                        }
                    }
                }
            }
        }
    }

    /// Whether the images run in parallel over rayon's threads: more than one image and
    /// enough entries to copy, each entry counted as [`COPY_COST_MACS`] multiply-adds
    /// against [`matgrad_engine::par::blocks_parallel`]'s thresholds (a patch matrix of
    /// 131 072 entries on a worker thread, 524 288 elsewhere).
    fn parallel(&self) -> bool {
        let (rows, cols) = self.shape();
        matgrad_engine::par::blocks_parallel(
            self.maps.batch,
            COPY_COST_MACS * rows * (cols / self.maps.batch.max(1)),
        )
    }

    /// The patch matrix of `x` (zeros in the padding).
    fn gather<T: Scalar>(&self, x: &Mat<T>) -> Mat<T> {
        use rayon::prelude::*;
        let (rows, cols) = self.shape();
        let khw = rows / self.maps.channels.max(1);
        let (per_col, per_pix) = (self.out.0 * self.out.1, self.maps.height * self.maps.width);
        let mut p = Mat::<T>::zeros(rows, cols);
        // entry ci·khw + off of patch column `col` is channel ci of pixel `pix`
        let copy = |dst: &mut [T], off: usize, src: &[T]| {
            for (ci, &v) in src.iter().enumerate() {
                dst[ci * khw + off] = v;
            }
        };
        if per_col == 0 {
            return p;
        }
        if self.parallel() {
            p.as_mut()
                .par_col_chunks_mut(per_col)
                .enumerate()
                .for_each(|(b, mut pb)| {
                    let xb = x.as_ref().subcols(b * per_pix, per_pix);
                    self.for_each_tap(b..b + 1, |col, off, pix| {
                        copy(column(pb.as_mut(), col), off, column_ref(xb, pix))
                    })
                });
        } else {
            self.for_each_tap(0..self.maps.batch, |col, off, pix| {
                copy(p.col_as_slice_mut(col), off, x.col_as_slice(pix))
            });
        }
        p
    }

    /// The adjoint of [`Patches::gather`]: every patch entry added back to the pixel it came
    /// from (`C × B·H·W`).
    fn scatter<T: Scalar>(&self, p: &Mat<T>) -> Mat<T> {
        use rayon::prelude::*;
        let (rows, _) = self.shape();
        let c = self.maps.channels;
        let khw = rows / c.max(1);
        let (per_col, per_pix) = (self.out.0 * self.out.1, self.maps.height * self.maps.width);
        let mut x = Mat::<T>::zeros(c, self.maps.batch * per_pix);
        let add = |dst: &mut [T], off: usize, src: &[T]| {
            for (ci, d) in dst.iter_mut().enumerate() {
                *d += src[ci * khw + off];
            }
        };
        if per_pix == 0 {
            return x;
        }
        if self.parallel() {
            x.as_mut()
                .par_col_chunks_mut(per_pix)
                .enumerate()
                .for_each(|(b, mut xb)| {
                    let pb = p.as_ref().subcols(b * per_col, per_col);
                    self.for_each_tap(b..b + 1, |col, off, pix| {
                        add(column(xb.as_mut(), pix), off, column_ref(pb, col))
                    })
                });
        } else {
            self.for_each_tap(0..self.maps.batch, |col, off, pix| {
                add(x.col_as_slice_mut(pix), off, p.col_as_slice(col))
            });
        }
        x
    }

    fn im2col<'t>(self, x: Var<'t>) -> Result<Var<'t>> {
        let out = x.with_value(|v| match v {
            Value::Real(m) => Value::Real(self.gather(m)),
            Value::Complex(m) => Value::Complex(self.gather(m)),
        });
        x.tape().record1(Rc::new(Im2col(self)), &[x], out)
    }

    fn col2im<'t>(self, p: Var<'t>) -> Result<Var<'t>> {
        let out = p.with_value(|v| match v {
            Value::Real(m) => Value::Real(self.scatter(m)),
            Value::Complex(m) => Value::Complex(self.scatter(m)),
        });
        p.tape().record1(Rc::new(Col2im(self)), &[p], out)
    }
}

/// The im2col node: linear, its adjoint is [`Col2im`] and its tangent itself.
struct Im2col(Patches);

/// The col2im node (scatter-add of patches): linear, its adjoint is [`Im2col`].
struct Col2im(Patches);

type Cts<'t> = matgrad_engine::Result<Vec<Option<Var<'t>>>>;

fn linear<'t>(g: Option<Var<'t>>, f: impl FnOnce(Var<'t>) -> Result<Var<'t>>) -> Cts<'t> {
    Ok(vec![g.map(f).transpose()?])
}

impl Op for Im2col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn copies_entries(&self) -> bool {
        true
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Cts<'t> {
        linear(ct[0], |g| self.0.col2im(g))
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Cts<'t> {
        linear(t[0], |g| self.0.im2col(g))
    }
}

impl Op for Col2im {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn vjp<'t>(&self, _: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Cts<'t> {
        linear(ct[0], |g| self.0.im2col(g))
    }
    fn jvp<'t>(&self, _: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Cts<'t> {
        linear(t[0], |g| self.0.col2im(g))
    }
}

/// The patch matrix `(C·kh·kw) × (B·H_o·W_o)`: column `(b, oh, ow)` holds the window of image
/// b at that output position, row `(c, ki, kj)` (zero in the padding). One node, written
/// directly by index arithmetic; its adjoint is [`col2im`].
///
/// # Errors
/// The input does not have the shape of `maps`; a bad window.
pub fn im2col<'t>(x: Var<'t>, maps: &FeatureMaps, win: &Window) -> Result<Var<'t>> {
    const OP: &str = "im2col";
    maps.check(OP, x)?;
    Patches::new(OP, maps, win)?.im2col(x)
}

/// The adjoint of [`im2col`]: a `(C·kh·kw) × (B·H_o·W_o)` patch matrix added back into the
/// `C × (B·H·W)` feature maps it was cut from (overlapping windows add; padding entries are
/// dropped). PyTorch's `fold` on this layout.
///
/// # Errors
/// A bad window; `p` not of the patch-matrix shape (naming `col2im`).
pub fn col2im<'t>(p: Var<'t>, maps: &FeatureMaps, win: &Window) -> Result<Var<'t>> {
    const OP: &str = "col2im";
    let g = Patches::new(OP, maps, win)?;
    if p.shape() != g.shape() {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "the patch matrix is {:?} but {} channels × {}×{} windows over {} images of {}×{} need {:?}",
                p.shape(),
                maps.channels,
                win.kernel.0,
                win.kernel.1,
                maps.batch,
                maps.height,
                maps.width,
                g.shape()
            ),
        });
    }
    g.col2im(p)
}

/// 2-D convolution (cross-correlation) of a batch of feature maps with `C_out` kernels
/// `k` (`C_out × (C·kh·kw)`) and an optional bias (`C_out × 1`): the `C_out × (B·H_o·W_o)`
/// output maps. Matches PyTorch's `conv2d(x, weight, bias, stride, padding, dilation)`.
///
/// ```
/// use matgrad_engine::{Tape, testing::real_matrix};
/// use matgrad_layers::{conv2d, FeatureMaps, Window};
/// # fn main() -> Result<(), matgrad_layers::Error> {
/// let tape = Tape::new();
/// let maps = FeatureMaps { channels: 3, batch: 2, height: 8, width: 8 };
/// let x = tape.leaf(real_matrix(3, 2 * 64, 1))?;
/// let k = tape.leaf(real_matrix(4, 3 * 9, 2))?;          // 4 kernels of 3×3×3
/// let y = conv2d(x, &maps, k, None, &Window { padding: 1, ..Window::new(3, 3) })?;
/// assert_eq!(y.shape(), (4, 2 * 64));
/// # Ok(()) }
/// ```
///
/// # Errors
/// Shapes (input vs `maps`, kernels vs `C·kh·kw`, bias vs `C_out`), a bad window, dtypes —
/// naming `conv2d`.
pub fn conv2d<'t>(
    x: Var<'t>,
    maps: &FeatureMaps,
    k: Var<'t>,
    bias: Option<Var<'t>>,
    win: &Window,
) -> Result<Var<'t>> {
    const OP: &str = "conv2d";
    maps.check(OP, x)?;
    let (kh, kw) = win.kernel;
    let (cout, klen) = k.shape();
    if klen != maps.channels * kh * kw {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "kernels are {cout}×{klen} but {} input channels with a {kh}×{kw} window need {cout}×{} (C_out × C·kh·kw)",
                maps.channels,
                maps.channels * kh * kw
            ),
        });
    }
    let cols = im2col(x, maps, win).map_err(|e| e.within(OP))?;
    let y = k.matmul(cols).map_err(|e| e.within(OP))?;
    match bias {
        None => Ok(y),
        Some(b) => {
            if b.shape() != (cout, 1) {
                return Err(Error::InvalidArgument {
                    op: OP,
                    message: format!(
                        "the bias is {:?}; it must be {cout}×1 (one per kernel)",
                        b.shape()
                    ),
                });
            }
            let (m, n) = y.shape();
            y.add(b.broadcast_to(m, n)?).map_err(|e| e.within(OP))
        }
    }
}

/// The output shape of [`conv2d`] (or a pooling) as [`FeatureMaps`].
///
/// # Errors
/// A bad window.
pub fn output_maps(maps: &FeatureMaps, channels: usize, win: &Window) -> Result<FeatureMaps> {
    let (height, width) = win.output("conv2d", maps.height, maps.width)?;
    Ok(FeatureMaps {
        channels,
        batch: maps.batch,
        height,
        width,
    })
}

/// Per-channel window gather `(kh·kw) × (C·B·H_o·W_o)` (columns: channel fastest), with
/// padded positions pointing at `pad` (or reported as `None` when `pad` is None).
/// The output size and, per window (consecutive runs of kh·kw), the input index of every
/// offset (`None` in the padding).
type WindowIndex = ((usize, usize), Vec<Option<usize>>);

fn window_index(maps: &FeatureMaps, win: &Window) -> Result<WindowIndex> {
    let (ho, wo) = win.output("pool", maps.height, maps.width)?;
    let (kh, kw) = win.kernel;
    let mut idx = Vec::with_capacity(kh * kw * maps.channels * maps.batch * ho * wo);
    for b in 0..maps.batch {
        for oh in 0..ho {
            for ow in 0..wo {
                for c in 0..maps.channels {
                    for ki in 0..kh {
                        for kj in 0..kw {
                            idx.push(patch_index(maps, win, c, b, (oh, ow), (ki, kj)));
                        }
                    }
                }
            }
        }
    }
    Ok(((ho, wo), idx))
}

/// Average pooling over `win` windows, per channel (padding counts as zeros, as PyTorch's
/// `avg_pool2d` with `count_include_pad=True`): `C × (B·H_o·W_o)`.
///
/// # Errors
/// Input shape; a bad window. Errors name `avg_pool2d`.
pub fn avg_pool2d<'t>(x: Var<'t>, maps: &FeatureMaps, win: &Window) -> Result<Var<'t>> {
    const OP: &str = "avg_pool2d";
    maps.check(OP, x)?;
    let ((ho, wo), idx) = window_index(maps, win).map_err(|e| e.within(OP))?;
    let (v, zero) = padded_vec(x)?;
    let idx: Vec<usize> = idx.into_iter().map(|i| i.unwrap_or(zero)).collect();
    let k = win.kernel.0 * win.kernel.1;
    let n = maps.channels * maps.batch * ho * wo;
    v.take_rows(&idx)?
        .reshape(k, n)?
        .mean(Axis::Rows)?
        .reshape(maps.channels, maps.batch * ho * wo)
}

/// Max pooling over `win` windows, per channel (padding never wins, as PyTorch's −∞
/// padding): `C × (B·H_o·W_o)`. The gradient goes to the first maximiser of each window (the
/// subgradient PyTorch uses too). Real input only.
///
/// # Errors
/// Input shape or dtype; a bad window; a window entirely in the padding. Errors name
/// `max_pool2d`.
pub fn max_pool2d<'t>(x: Var<'t>, maps: &FeatureMaps, win: &Window) -> Result<Var<'t>> {
    const OP: &str = "max_pool2d";
    maps.check(OP, x)?;
    if x.dtype() != DType::F64 {
        return Err(Error::UnsupportedDType {
            op: OP,
            dtype: x.dtype(),
            hint: "the maximum needs an order: pool the real part or the modulus",
        });
    }
    let ((ho, wo), idx) = window_index(maps, win).map_err(|e| e.within(OP))?;
    let k = win.kernel.0 * win.kernel.1;
    let xv = x.value();
    let xr = xv.as_real().expect("real checked above");
    let at = |i: usize| xr[(i % maps.channels, i / maps.channels)];
    let mut pick = Vec::with_capacity(idx.len() / k);
    for window in idx.chunks(k) {
        let best = window
            .iter()
            .flatten()
            .copied()
            .fold(None, |best: Option<usize>, i| match best {
                Some(j) if at(j) >= at(i) => Some(j),
                _ => Some(i),
            })
            .ok_or_else(|| Error::InvalidArgument {
                op: OP,
                message: "a window lies entirely in the padding; reduce the padding".into(),
            })?;
        pick.push(best);
    }
    x.vec()?
        .take_rows(&pick)?
        .reshape(maps.channels, maps.batch * ho * wo)
}

/// Global average pooling: the `B × C` matrix of per-image channel means (rows are
/// samples).
///
/// # Errors
/// Input shape. Errors name `global_avg_pool`.
pub fn global_avg_pool<'t>(x: Var<'t>, maps: &FeatureMaps) -> Result<Var<'t>> {
    const OP: &str = "global_avg_pool";
    maps.check(OP, x)?;
    let hw = maps.height * maps.width;
    if hw == 0 {
        return Err(Error::Empty {
            op: OP,
            shape: (maps.height, maps.width),
        });
    }
    // Xᵀ reshaped (column-major) to HW × (B·C) has entry (pix, b + B·c)
    x.transpose()?
        .reshape(hw, maps.batch * maps.channels)?
        .mean(Axis::Rows)?
        .reshape(maps.batch, maps.channels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::Tape;

    /// Direct 7-loop cross-correlation, the definition.
    fn direct(
        x: &faer::Mat<f64>,
        m: &FeatureMaps,
        k: &faer::Mat<f64>,
        win: &Window,
    ) -> faer::Mat<f64> {
        let (ho, wo) = win.output("t", m.height, m.width).unwrap();
        let (kh, kw) = win.kernel;
        faer::Mat::from_fn(k.nrows(), m.batch * ho * wo, |o, q| {
            let (b, r) = (q / (ho * wo), q % (ho * wo));
            let (oh, ow) = (r / wo, r % wo);
            let mut s = 0.0;
            for c in 0..m.channels {
                for ki in 0..kh {
                    for kj in 0..kw {
                        let h =
                            (oh * win.stride + ki * win.dilation) as isize - win.padding as isize;
                        let w =
                            (ow * win.stride + kj * win.dilation) as isize - win.padding as isize;
                        if h >= 0 && w >= 0 && (h as usize) < m.height && (w as usize) < m.width {
                            let pix = b * m.height * m.width + h as usize * m.width + w as usize;
                            s += k[(o, c * kh * kw + ki * kw + kj)] * x[(c, pix)];
                        }
                    }
                }
            }
            s
        })
    }

    /// A batch large enough for the images to run in parallel (a 72 × 16384 patch matrix):
    /// every im2col entry equals its closed form (the pixel it reads, or 0 in the padding),
    /// and col2im(im2col(x)) is x times the number of windows covering each pixel (corner 4,
    /// edge 6, interior 9 for 3×3, stride 1, padding 1).
    #[test]
    fn large_batch_patches_match_the_closed_form() {
        // on a worker thread, where 72 × 16384 patch entries take the parallel path
        matgrad_engine::par::in_pool(large_batch_patches_on_a_worker);
    }

    fn large_batch_patches_on_a_worker() {
        let m = FeatureMaps {
            channels: 8,
            batch: 16,
            height: 32,
            width: 32,
        };
        let win = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let g = Patches::new("t", &m, &win).unwrap();
        assert_eq!(g.shape(), (72, 16 * 32 * 32));
        let t = Tape::new();
        let xv = real_matrix(8, 16 * 32 * 32, 5);
        let x = t.constant(xv.clone()).unwrap();
        let p = im2col(x, &m, &win).unwrap();
        let (pv, xr) = (p.value(), xv.as_real().unwrap().clone());
        let pr = pv.as_real().unwrap();
        for col in 0..pr.ncols() {
            let (b, r) = (col / 1024, col % 1024);
            let (oh, ow) = (r / 32, r % 32);
            for c in 0..8 {
                for ki in 0..3 {
                    for kj in 0..3 {
                        let (h, w) = ((oh + ki) as isize - 1, (ow + kj) as isize - 1);
                        let want = if (0..32).contains(&h) && (0..32).contains(&w) {
                            xr[(c, b * 1024 + h as usize * 32 + w as usize)]
                        } else {
                            0.0
                        };
                        assert_eq!(
                            pr[(c * 9 + ki * 3 + kj, col)],
                            want,
                            "({c},{ki},{kj}) col {col}"
                        );
                    }
                }
            }
        }
        let back = col2im(p, &m, &win).unwrap().value();
        let back = back.as_real().unwrap();
        let covered = |i: usize| if i == 0 || i == 31 { 2.0 } else { 3.0 };
        for pix in 0..back.ncols() {
            let (h, w) = ((pix % 1024) / 32, pix % 32);
            for c in 0..8 {
                let want = xr[(c, pix)] * covered(h) * covered(w);
                assert!((back[(c, pix)] - want).abs() <= 1e-14 * want.abs().max(1.0));
            }
        }
    }

    #[test]
    fn conv2d_forward_matches_the_definition() {
        let m = FeatureMaps {
            channels: 2,
            batch: 2,
            height: 5,
            width: 6,
        };
        for win in [
            Window::new(3, 3),
            Window {
                stride: 2,
                padding: 1,
                ..Window::new(3, 2)
            },
            Window {
                dilation: 2,
                padding: 2,
                ..Window::new(2, 3)
            },
            Window::new(1, 1),
        ] {
            let t = Tape::new();
            let x = real_matrix(2, 60, 1);
            let k = real_matrix(3, 2 * win.kernel.0 * win.kernel.1, 2);
            let y = conv2d(
                t.constant(x.clone()).unwrap(),
                &m,
                t.constant(k.clone()).unwrap(),
                None,
                &win,
            )
            .unwrap()
            .value();
            let expect = direct(x.as_real().unwrap(), &m, k.as_real().unwrap(), &win);
            assert!(y.rel_diff(&Value::Real(expect)).unwrap() < 1e-14, "{win:?}");
        }
    }

    #[test]
    fn col2im_of_ones_counts_the_windows_covering_each_pixel() {
        // 3×3 windows, stride 1, padding 1 on a 4×4 image: a corner pixel lies in 4
        // windows, an edge pixel in 6, an interior one in 9 (every channel alike)
        let t = Tape::new();
        let m = FeatureMaps {
            channels: 2,
            batch: 2,
            height: 4,
            width: 4,
        };
        let win = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let ones = t.constant(Value::Real(faer::Mat::ones(18, 32))).unwrap();
        let x = col2im(ones, &m, &win).unwrap().value();
        let count = |h: usize, w: usize| {
            let edge = |i: usize| if i == 0 || i == 3 { 2.0 } else { 3.0 };
            edge(h) * edge(w)
        };
        let expect = faer::Mat::from_fn(2, 32, |_, j| count((j % 16) / 4, j % 4));
        assert_eq!(x.as_real().unwrap(), &expect);
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        // Re⟨im2col(X), P⟩ = Re⟨X, col2im(P)⟩ for complex data, with
        // stride, padding and dilation so that windows overlap, skip pixels and leave the image
        let m = FeatureMaps {
            channels: 3,
            batch: 2,
            height: 5,
            width: 6,
        };
        let win = Window {
            stride: 2,
            padding: 2,
            dilation: 2,
            ..Window::new(3, 2)
        };
        let t = Tape::new();
        let x = complex_matrix(3, 60, 11);
        let cols = im2col(t.constant(x.clone()).unwrap(), &m, &win).unwrap();
        let (r, c) = cols.shape();
        let p = complex_matrix(r, c, 12);
        let back = col2im(t.constant(p.clone()).unwrap(), &m, &win).unwrap();
        let lhs = cols.value().real_inner(&p).unwrap();
        let rhs = x.real_inner(&back.value()).unwrap();
        assert!((lhs - rhs).abs() <= 1e-13 * lhs.abs(), "{lhs} vs {rhs}");
    }

    #[test]
    fn pooling_forward_closed_form() {
        let t = Tape::new();
        let m = FeatureMaps {
            channels: 1,
            batch: 1,
            height: 2,
            width: 4,
        };
        let x = t
            .constant(Value::Real(faer::mat![[
                1.0, 5.0, 2.0, 2.0, 3.0, 0.0, -1.0, 7.0
            ]]))
            .unwrap();
        let win = Window {
            stride: 2,
            ..Window::new(2, 2)
        };
        let avg = avg_pool2d(x, &m, &win).unwrap().value();
        assert_eq!(avg.as_real().unwrap(), &faer::mat![[2.25, 2.5]]);
        let max = max_pool2d(x, &m, &win).unwrap().value();
        assert_eq!(max.as_real().unwrap(), &faer::mat![[5.0, 7.0]]);
        let m2 = FeatureMaps {
            channels: 2,
            batch: 2,
            height: 1,
            width: 2,
        };
        let x2 = t
            .constant(Value::Real(faer::mat![
                [1.0, 3.0, 5.0, 7.0],
                [2.0, 4.0, 6.0, 8.0]
            ]))
            .unwrap();
        let g = global_avg_pool(x2, &m2).unwrap().value();
        assert_eq!(g.as_real().unwrap(), &faer::mat![[2.0, 3.0], [6.0, 7.0]]);
    }

    #[test]
    fn rules() {
        let m = FeatureMaps {
            channels: 2,
            batch: 2,
            height: 4,
            width: 3,
        };
        let win = Window {
            stride: 2,
            padding: 1,
            ..Window::new(2, 2)
        };
        assert_rules(
            "conv2d",
            |_, v| conv2d(v[0], &m, v[1], Some(v[2]), &win),
            &[
                real_matrix(2, 24, 3),
                real_matrix(3, 8, 4),
                real_matrix(3, 1, 5),
            ],
        );
        assert_rules(
            "conv2d complex",
            |_, v| conv2d(v[0], &m, v[1], None, &Window::new(2, 2)),
            &[complex_matrix(2, 24, 6), complex_matrix(1, 8, 7)],
        );
        assert_rules(
            "im2col",
            |_, v| im2col(v[0], &m, &win),
            &[complex_matrix(2, 24, 13)],
        );
        assert_rules(
            "col2im",
            |_, v| col2im(v[0], &m, &win),
            &[real_matrix(8, 12, 14)],
        );
        assert_rules(
            "avg_pool2d",
            |_, v| avg_pool2d(v[0], &m, &win),
            &[real_matrix(2, 24, 8)],
        );
        // distinct values: the maximiser is unique, so the function is smooth there
        assert_rules(
            "max_pool2d",
            |_, v| max_pool2d(v[0], &m, &win),
            &[real_matrix(2, 24, 9)],
        );
        assert_rules(
            "global_avg_pool",
            |_, v| global_avg_pool(v[0], &m),
            &[complex_matrix(2, 24, 10)],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let m = FeatureMaps {
            channels: 2,
            batch: 1,
            height: 3,
            width: 3,
        };
        let x = t.leaf(real_matrix(2, 9, 1)).unwrap();
        let k = t.leaf(real_matrix(4, 18, 2)).unwrap();
        let wrong = FeatureMaps { channels: 3, ..m };
        for e in [
            conv2d(x, &wrong, k, None, &Window::new(3, 3)).unwrap_err(),
            conv2d(x, &m, k, None, &Window::new(2, 2)).unwrap_err(),
            conv2d(x, &m, k, None, &Window::new(4, 4)).unwrap_err(),
            conv2d(
                x,
                &m,
                k,
                None,
                &Window {
                    stride: 0,
                    ..Window::new(3, 3)
                },
            )
            .unwrap_err(),
            conv2d(
                x,
                &m,
                k,
                Some(t.leaf(real_matrix(3, 1, 3)).unwrap()),
                &Window::new(3, 3),
            )
            .unwrap_err(),
        ] {
            assert!(e.to_string().contains("conv2d"), "{e}");
        }
        let e = col2im(x, &m, &Window::new(2, 2)).unwrap_err();
        assert!(e.to_string().contains("col2im"), "{e}");
        let c = t.leaf(complex_matrix(2, 9, 4)).unwrap();
        assert!(max_pool2d(c, &m, &Window::new(2, 2))
            .unwrap_err()
            .to_string()
            .contains("max_pool2d"));
        let e = max_pool2d(
            x,
            &m,
            &Window {
                padding: 2,
                ..Window::new(1, 1)
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("padding"), "{e}");
    }
}
