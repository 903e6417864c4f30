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
//! order of derivative comes from the engine; the GEMM is faer's. `conv2d` itself is one
//! node that never forms the whole patch matrix: image by image, each image's patches go to
//! a workspace and are multiplied (in parallel over groups of images when the batch pays);
//! its recorded rules are built from `im2col`, `col2im` and products, and a sweep that is
//! not recorded runs the same cotangents image by image.
//!
//! **Pooling.** Average pooling is the mean of a gather; max pooling gathers the first
//! maximiser of each window (padding excluded, as PyTorch's −∞ padding), so its gradient is
//! the subgradient that routes each output's cotangent to that one input; global average
//! pooling returns the `B × C` matrix of per-image channel means (rows are samples, ready for
//! a [`crate::train::Linear`] classifier). Derivation: docs/math/conv2d.md.

use std::rc::Rc;

use faer::linalg::matmul::matmul_with_conj;
use faer::{Accum, Conj, Mat, MatMut, Par};
use matgrad_engine::ops::matmul::gemm_into;
use matgrad_engine::{Axis, Ct, DType, Error, Form, Op, OpCtx, Scalar, Value, Var};

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

/// At most this many partial sums of the kernels' cotangent in a fused backward
/// ([`Patches::conv_kernel_grad`]): chunks of images, fixed by the batch size alone.
const KERNEL_GRAD_CHUNKS: usize = 16;

/// The most entries of a fused conv2d pass's workspace (8 MiB real): an image whose patches
/// (`C·kh·kw × H_o·W_o`) have more is processed in blocks of patch columns.
const WORKSPACE_MAX_ENTRIES: usize = 1 << 20;

/// Runs `run(first, part)` on `out` cut into consecutive parts of `per_part · unit_cols`
/// columns (the last may be shorter), `first` the index of the part's first unit: on
/// rayon's threads, one task per part, when there is more than one part, else in place.
fn over_parts<T: Scalar>(
    out: MatMut<'_, T>,
    parts: usize,
    per_part: usize,
    unit_cols: usize,
    run: impl Fn(usize, MatMut<'_, T>) + Sync + Send,
) {
    use rayon::prelude::*;
    if parts > 1 {
        out.par_col_chunks_mut(per_part * unit_cols)
            .enumerate()
            .for_each(|(i, part)| run(i * per_part, part));
    } else {
        run(0, out);
    }
}

/// The parallelism of each product inside a fused pass: the product's own
/// ([`matgrad_engine::par::gemm_par`]) when the pass runs as one task, sequential when its
/// parts already run on rayon's threads.
fn part_par(one_task: bool, m: usize, n: usize, k: usize) -> Par {
    if one_task {
        matgrad_engine::par::gemm_par(m, n, k)
    } else {
        Par::Seq
    }
}

#[derive(Clone, Copy, Debug)]
struct Patches {
    maps: FeatureMaps,
    win: Window,
    out: (usize, usize),
    /// Patch columns per workspace in the fused passes ([`WORKSPACE_MAX_ENTRIES`] / rows).
    block_cols: usize,
}

impl Patches {
    fn new(op: &'static str, maps: &FeatureMaps, win: &Window) -> Result<Patches> {
        let out = win.output(op, maps.height, maps.width)?;
        let rows = maps.channels * win.kernel.0 * win.kernel.1;
        Ok(Patches {
            maps: *maps,
            win: *win,
            out,
            block_cols: (WORKSPACE_MAX_ENTRIES / rows.max(1)).max(1),
        })
    }

    /// The blocks of one image's patch columns that the fused passes take at a time.
    fn blocks(&self) -> impl Iterator<Item = std::ops::Range<usize>> {
        let (per_col, bc) = (self.out.0 * self.out.1, self.block_cols);
        (0..per_col)
            .step_by(bc)
            .map(move |c0| c0..(c0 + bc).min(per_col))
    }

    /// Columns of a fused pass's workspace.
    fn workspace_cols(&self) -> usize {
        self.block_cols.min(self.out.0 * self.out.1)
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

    /// Calls `f(j, offset, pixel)` for the patch columns `cols` of one image (`j` counts
    /// from `cols.start`), every kernel offset `ki·kw + kj` and the pixel (`h·W + w`) it
    /// reads, or `None` in the padding (only when `padding`; otherwise the padding taps are
    /// skipped): [`Patches::for_each_tap`] for one image.
    fn for_each_block_tap(
        &self,
        cols: std::ops::Range<usize>,
        padding: bool,
        mut f: impl FnMut(usize, usize, Option<usize>),
    ) {
        let (m, win) = (&self.maps, &self.win);
        let wo = self.out.1;
        let (kh, kw) = win.kernel;
        let inside = |o: usize, k: usize, n: usize| {
            (o * win.stride + k * win.dilation)
                .checked_sub(win.padding)
                .filter(|&i| i < n)
        };
        let (mut oh, mut ow) = (cols.start / wo.max(1), cols.start % wo.max(1));
        for j in 0..cols.len() {
            for ki in 0..kh {
                let Some(h) = inside(oh, ki, m.height) else {
                    if padding {
                        (0..kw).for_each(|kj| f(j, ki * kw + kj, None));
                    }
                    continue;
                };
                for kj in 0..kw {
                    match inside(ow, kj, m.width) {
                        Some(w) => f(j, ki * kw + kj, Some(h * m.width + w)),
                        None if padding => f(j, ki * kw + kj, None),
                        None => {}
                    }
                }
            }
            ow += 1;
            if ow == wo {
                (oh, ow) = (oh + 1, 0);
            }
        }
    }

    /// Writes the patch columns `cols` of image `b` of `x` into the first columns of `p`, in
    /// tap-major row order — row `(ki·kw + kj)·C + c`, not the patch matrix's
    /// `c·kh·kw + ki·kw + kj` — so that each tap is one copy of a pixel's `C` contiguous
    /// channels (1.7× faster than the strided writes of the patch matrix's order for 8
    /// channels and a 3×3 window). Taps in the padding are written as zeros.
    fn gather_block<T: Scalar>(
        &self,
        x: &Mat<T>,
        b: usize,
        cols: std::ops::Range<usize>,
        p: &mut Mat<T>,
    ) {
        let c = self.maps.channels;
        let first = b * self.maps.height * self.maps.width;
        self.for_each_block_tap(cols, true, |j, off, pix| {
            let dst = &mut p.col_as_slice_mut(j)[off * c..(off + 1) * c];
            match pix {
                Some(pix) => dst.copy_from_slice(x.col_as_slice(first + pix)),
                None => dst.fill(T::from_f64(0.0)),
            }
        });
    }

    /// Adds tap-major patch columns (the first `cols.len()` columns of `p`, in
    /// [`Patches::gather_block`]'s order) back into the pixels `xb` (`C × H·W`) of their
    /// image.
    fn scatter_block<T: Scalar>(
        &self,
        p: &Mat<T>,
        cols: std::ops::Range<usize>,
        mut xb: MatMut<'_, T>,
    ) {
        let c = self.maps.channels;
        self.for_each_block_tap(cols, false, |j, off, pix| {
            if let Some(pix) = pix {
                let src = &p.col_as_slice(j)[off * c..(off + 1) * c];
                for (d, &v) in column(xb.as_mut(), pix).iter_mut().zip(src) {
                    *d += v;
                }
            }
        });
    }

    /// The kernels `C_out × (C·kh·kw)` with their columns in tap-major order (column
    /// `(ki·kw + kj)·C + c` holds column `c·kh·kw + ki·kw + kj`), to multiply
    /// [`Patches::gather_block`]'s workspace.
    fn tap_major<T: Scalar>(&self, k: &Mat<T>) -> Mat<T> {
        let (c, khw) = (self.maps.channels, self.win.kernel.0 * self.win.kernel.1);
        Mat::from_fn(k.nrows(), k.ncols(), |o, r| k[(o, (r % c) * khw + r / c)])
    }

    /// The inverse of [`Patches::tap_major`].
    fn channel_major<T: Scalar>(&self, k: &Mat<T>) -> Mat<T> {
        let (c, khw) = (self.maps.channels, self.win.kernel.0 * self.win.kernel.1);
        Mat::from_fn(k.nrows(), k.ncols(), |o, r| k[(o, (r % khw) * c + r / khw)])
    }

    /// Into how many contiguous groups of images a fused pass of `macs_per_image`
    /// multiply-adds per image is split, one rayon task per group: one per thread when
    /// [`matgrad_engine::par::blocks_parallel`] says the batch pays, else 1.
    fn groups(&self, macs_per_image: usize) -> usize {
        let b = self.maps.batch;
        if matgrad_engine::par::blocks_parallel(b, macs_per_image) {
            matgrad_engine::par::max_threads().clamp(1, b)
        } else {
            1
        }
    }

    /// The multiply-adds of one image's patch copy and its `C_out`-row product.
    fn macs_per_image(&self, cout: usize) -> usize {
        let (rows, cols) = self.shape();
        (COPY_COST_MACS + cout) * rows * (cols / self.maps.batch.max(1))
    }

    /// `K · im2col(X)` image by image: each group of images gathers an image's patches
    /// into one workspace of `C·kh·kw × H_o·W_o` (cache-sized for the usual layers, instead of
    /// the whole `C·kh·kw × B·H_o·W_o` patch matrix; blocks of columns for an image with more
    /// than [`WORKSPACE_MAX_ENTRIES`] patch entries) and multiplies it into its output
    /// columns.
    fn conv<T: Scalar>(&self, x: &Mat<T>, k: &Mat<T>) -> Mat<T> {
        let (rows, cols) = self.shape();
        let cout = k.nrows();
        let per_col = self.out.0 * self.out.1;
        let mut y = Mat::<T>::zeros(cout, cols);
        if cols == 0 || cout == 0 {
            return y;
        }
        let k = &self.tap_major(k);
        let groups = self.groups(self.macs_per_image(cout));
        let wcols = self.workspace_cols();
        let par = part_par(groups == 1, cout, wcols, rows);
        let run = |first: usize, mut yg: MatMut<'_, T>| {
            let mut ws = Mat::<T>::zeros(rows, wcols);
            for i in 0..yg.ncols() / per_col {
                for cols in self.blocks() {
                    let (c0, n) = (cols.start, cols.len());
                    self.gather_block(x, first + i, cols, &mut ws);
                    let dst = yg.as_mut().subcols_mut(i * per_col + c0, n);
                    let p = ws.as_ref().subcols(0, n);
                    gemm_into(dst, k.as_ref(), Form::Plain, p, Form::Plain, par);
                }
            }
        };
        let per_group = self.maps.batch.div_ceil(groups);
        over_parts(y.as_mut(), groups, per_group, per_col, run);
        y
    }

    /// The input's cotangent of [`Patches::conv`], `col2im(Kᴴ Ȳ)`, image by image: each
    /// image's `Kᴴ Ȳ_b` (block by block of columns) goes to a workspace and is added back
    /// into its pixels at once.
    fn conv_input_grad<T: Scalar>(&self, k: &Mat<T>, g: &Mat<T>) -> Mat<T> {
        let (rows, cols) = self.shape();
        let per_col = self.out.0 * self.out.1;
        let per_pix = self.maps.height * self.maps.width;
        let mut xbar = Mat::<T>::zeros(self.maps.channels, self.maps.batch * per_pix);
        if cols == 0 || rows == 0 || per_pix == 0 {
            return xbar;
        }
        let cout = k.nrows();
        let k = &self.tap_major(k);
        let groups = self.groups(self.macs_per_image(cout));
        let wcols = self.workspace_cols();
        let par = part_par(groups == 1, rows, wcols, cout);
        let run = |first: usize, mut xg: MatMut<'_, T>| {
            let mut ws = Mat::<T>::zeros(rows, wcols);
            for i in 0..xg.ncols() / per_pix {
                for cols in self.blocks() {
                    let (c0, n) = (cols.start, cols.len());
                    let gb = g.as_ref().subcols((first + i) * per_col + c0, n);
                    let p = ws.as_mut().subcols_mut(0, n);
                    gemm_into(p, k.as_ref(), Form::Adjoint, gb, Form::Plain, par);
                    self.scatter_block(&ws, cols, xg.as_mut().subcols_mut(i * per_pix, per_pix));
                }
            }
        };
        let per_group = self.maps.batch.div_ceil(groups);
        over_parts(xbar.as_mut(), groups, per_group, per_pix, run);
        xbar
    }

    /// The kernels' cotangent of [`Patches::conv`], `Ȳ im2col(X)ᴴ`, image by image: the
    /// images are cut into at most [`KERNEL_GRAD_CHUNKS`] chunks, whatever the thread count;
    /// each chunk's partial sum `Σ_b Ȳ_b P_bᴴ` is formed in image order, block by block of
    /// columns (the groups of threads take whole chunks), and the partial sums are added in
    /// chunk order, so the result does not depend on the number of threads — for a batch of
    /// more than one image (one image's products may run in parallel themselves, split along
    /// their inner dimension).
    fn conv_kernel_grad<T: Scalar>(&self, x: &Mat<T>, g: &Mat<T>) -> Mat<T> {
        let (rows, cols) = self.shape();
        let cout = g.nrows();
        let per_col = self.out.0 * self.out.1;
        let batch = self.maps.batch;
        if cols == 0 || rows == 0 || cout == 0 {
            return Mat::zeros(cout, rows);
        }
        let per_chunk = batch.div_ceil(KERNEL_GRAD_CHUNKS.min(batch));
        let chunks = batch.div_ceil(per_chunk);
        let groups = self.groups(self.macs_per_image(cout)).min(chunks);
        let wcols = self.workspace_cols();
        let par = part_par(groups == 1 && chunks == 1, cout, rows, wcols);
        let conj = if T::DTYPE == DType::F64 {
            Conj::No
        } else {
            Conj::Yes
        };
        // chunk c's partial sum in columns c·rows … (c + 1)·rows − 1
        let mut partial = Mat::<T>::zeros(cout, rows * chunks);
        let run = |first_chunk: usize, mut pg: MatMut<'_, T>| {
            let mut ws = Mat::<T>::zeros(rows, wcols);
            for c in 0..pg.ncols() / rows {
                let images =
                    (first_chunk + c) * per_chunk..((first_chunk + c + 1) * per_chunk).min(batch);
                let mut dst = pg.as_mut().subcols_mut(c * rows, rows);
                let mut started = false;
                for b in images {
                    for cols in self.blocks() {
                        let (c0, n) = (cols.start, cols.len());
                        self.gather_block(x, b, cols, &mut ws);
                        let gb = g.as_ref().subcols(b * per_col + c0, n);
                        let p = ws.as_ref().subcols(0, n);
                        if !started {
                            gemm_into(dst.as_mut(), gb, Form::Plain, p, Form::Adjoint, par);
                            started = true;
                        } else {
                            matmul_with_conj(
                                dst.as_mut(),
                                Accum::Add,
                                gb,
                                Conj::No,
                                p.transpose(),
                                conj,
                                T::from_f64(1.0),
                                par,
                            );
                        }
                    }
                }
            }
        };
        let per_group = chunks.div_ceil(groups);
        over_parts(partial.as_mut(), groups, per_group, rows, run);
        let mut kbar = partial.as_ref().subcols(0, rows).to_owned();
        for c in 1..chunks {
            kbar += partial.as_ref().subcols(c * rows, rows);
        }
        self.channel_major(&kbar)
    }

    /// `conv2d` without bias as one node ([`Conv2dNode`]); an error naming `conv2d` when
    /// the input and the kernels differ in dtype.
    fn conv_node<'t>(self, x: Var<'t>, k: Var<'t>) -> Result<Var<'t>> {
        let out = {
            let (xv, kv) = (x.value_rc(), k.value_rc());
            match (&*xv, &*kv) {
                (Value::Real(xm), Value::Real(km)) => Value::Real(self.conv(xm, km)),
                (Value::Complex(xm), Value::Complex(km)) => Value::Complex(self.conv(xm, km)),
                _ => {
                    return Err(Error::InvalidArgument {
                        op: "conv2d",
                        message: format!(
                            "the input is {} and the kernels are {}; convert one so both have the same dtype",
                            x.dtype(),
                            k.dtype()
                        ),
                    })
                }
            }
        };
        x.tape().record1(Rc::new(Conv2dNode(self)), &[x, k], out)
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

/// The conv2d node `Y = K · im2col(X)` (inputs X, K), computed image by image
/// ([`Patches::conv`]) so that the whole patch matrix is never formed. Its recorded rules
/// are built from [`im2col`], [`col2im`] and products (so every order of derivative comes
/// from the engine): `K̄ = Ȳ im2col(X)ᴴ`, `X̄ = col2im(Kᴴ Ȳ)`, and the tangent
/// `conv(Ẋ, K) + conv(X, K̇)`. A sweep that is not recorded runs the same cotangents image
/// by image ([`Patches::conv_input_grad`], [`Patches::conv_kernel_grad`]): the same sums in
/// a different rounding order (the test `fused_and_recorded_rules_agree`).
struct Conv2dNode(Patches);

impl Op for Conv2dNode {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Cts<'t> {
        let Some(g) = ct[0] else {
            return Ok(vec![None, None]);
        };
        let (x, k) = (ctx.input(0), ctx.input(1));
        let xbar = if ctx.needs_grad(0) {
            Some(
                self.0
                    .col2im(k.matmul_forms(Form::Adjoint, g, Form::Plain)?)?,
            )
        } else {
            None
        };
        let kbar = if ctx.needs_grad(1) {
            Some(g.matmul_forms(Form::Plain, self.0.im2col(x)?, Form::Adjoint)?)
        } else {
            None
        };
        Ok(vec![xbar, kbar])
    }
    fn has_values_rule(&self) -> bool {
        true
    }
    fn vjp_values(
        &self,
        ctx: &OpCtx<'_, '_>,
        ct: &[Option<Ct>],
        out: &mut Vec<Option<Ct>>,
    ) -> matgrad_engine::Result<bool> {
        let Some(g) = &ct[0] else {
            out.extend([None, None]);
            return Ok(true);
        };
        let (xv, kv) = (ctx.input(0).value_rc(), ctx.input(1).value_rc());
        let (want_x, want_k) = (ctx.needs_grad(0), ctx.needs_grad(1));
        // no bound is proved: the sweep scans both cotangents
        let ct = |v: Option<Value>| v.map(|v| Ct::new(v, f64::INFINITY));
        let p = &self.0;
        let (xbar, kbar) = match (&*xv, &*kv, &*g.value) {
            (Value::Real(x), Value::Real(k), Value::Real(g)) => (
                want_x.then(|| Value::Real(p.conv_input_grad(k, g))),
                want_k.then(|| Value::Real(p.conv_kernel_grad(x, g))),
            ),
            (Value::Complex(x), Value::Complex(k), Value::Complex(g)) => (
                want_x.then(|| Value::Complex(p.conv_input_grad(k, g))),
                want_k.then(|| Value::Complex(p.conv_kernel_grad(x, g))),
            ),
            // (not reached: the dtypes of a node's values and cotangents agree)
            _ => return Ok(false),
        };
        out.push(ct(xbar));
        out.push(ct(kbar));
        Ok(true)
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Cts<'t> {
        let (x, k) = (ctx.input(0), ctx.input(1));
        let dx = t[0].map(|dx| self.0.conv_node(dx, k)).transpose()?;
        let dk = t[1].map(|dk| self.0.conv_node(x, dk)).transpose()?;
        Ok(vec![match (dx, dk) {
            (Some(a), Some(b)) => Some(a.add(b)?),
            (a, b) => a.or(b),
        }])
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
    let y = Patches::new(OP, maps, win)?.conv_node(x, k)?;
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

    /// Entrywise moduli of a value (real or complex) as a real matrix.
    fn moduli(v: &Value) -> faer::Mat<f64> {
        match v {
            Value::Real(m) => faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)].abs()),
            Value::Complex(m) => faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)].norm()),
        }
    }

    /// `|a − b| ≤ slack(n) · bound` entrywise, where both are floating-point evaluations of
    /// sums of the same `n` products whose moduli sum to `bound` (each within
    /// `γ_n·bound` of the exact sum, Higham's bound; a complex product adds a few units of
    /// roundoff, covered by counting `n + 4` terms).
    fn assert_same_sums(what: &str, a: &Value, b: &Value, bound: &faer::Mat<f64>, n: usize) {
        let slack = 2.0 * (n + 4) as f64 * f64::EPSILON;
        let d = moduli(&a.axpy(-1.0, b).unwrap());
        assert_eq!(
            (d.nrows(), d.ncols()),
            (bound.nrows(), bound.ncols()),
            "{what}"
        );
        for j in 0..d.ncols() {
            for i in 0..d.nrows() {
                assert!(
                    d[(i, j)] <= slack * bound[(i, j)],
                    "{what} ({i},{j}): differ by {:e}, allowed {:e}",
                    d[(i, j)],
                    slack * bound[(i, j)]
                );
            }
        }
    }

    /// The unrecorded cotangents of `y = conv(x, k)` (the fused node's value rules) against
    /// the recorded ones (im2col, col2im and products on the tape) for the cotangent `gv`:
    /// the same sums in another order, so within [`assert_same_sums`]'s bound, with the
    /// moduli of the terms `col2im(|K|ᵀ|Ȳ|)` for X̄ (at most C_out + kh·kw terms each: the
    /// products, then the windows that cover a pixel) and
    /// `|Ȳ| im2col(|X|)ᵀ` for K̄ (B·H_o·W_o terms each).
    fn assert_fused_matches_recorded<'t>(
        what: &str,
        t: &'t Tape,
        (x, k, y): (Var<'t>, Var<'t>, Var<'t>),
        (xv, kv, gv): (&Value, &Value, &Value),
        m: &FeatureMaps,
        win: &Window,
    ) {
        let fused = t.vjp(&[y], std::slice::from_ref(gv), &[x, k]).unwrap();
        let g = t.constant(gv.clone()).unwrap();
        let recorded = t.vjp_graph(&[y], &[g], &[x, k]).unwrap();
        let (ax, ak, ag) = (moduli(xv), moduli(kv), moduli(gv));
        let xbound = col2im(
            t.constant(Value::Real(ak.transpose() * &ag)).unwrap(),
            m,
            win,
        )
        .unwrap()
        .value();
        let pabs = im2col(t.constant(Value::Real(ax)).unwrap(), m, win)
            .unwrap()
            .value();
        let kbound = &ag * pabs.as_real().unwrap().transpose();
        let (cout, taps) = (kv.shape().0, win.kernel.0 * win.kernel.1);
        assert_same_sums(
            &format!("{what}: X̄"),
            &fused[0],
            &recorded[0].value(),
            xbound.as_real().unwrap(),
            cout + taps,
        );
        assert_same_sums(
            &format!("{what}: K̄"),
            &fused[1],
            &recorded[1].value(),
            &kbound,
            y.shape().1,
        );
    }

    /// The fused node's rules of a sweep that is not recorded (image by image: the input's
    /// cotangent `col2im(Kᴴ Ȳ)` and the kernels' `Ȳ im2col(X)ᴴ`, summed in chunks of images)
    /// give the recorded rule's cotangents (im2col, col2im and products on the tape) up to
    /// the rounding of the same sums in another order. Batches of 17 and 20 put more than
    /// one image in a chunk of the kernels' cotangent; strides, padding, dilation, complex.
    /// `conv2d` without bias through the fused node with `block_cols` patch columns per
    /// workspace (0: the default).
    fn conv_blocked<'t>(
        x: Var<'t>,
        m: &FeatureMaps,
        k: Var<'t>,
        win: &Window,
        block_cols: usize,
    ) -> Var<'t> {
        let mut p = Patches::new("t", m, win).unwrap();
        if block_cols > 0 {
            p.block_cols = block_cols;
        }
        p.conv_node(x, k).unwrap()
    }

    #[test]
    fn fused_and_recorded_rules_agree() {
        let cases = [
            (
                2,
                2,
                (5, 6),
                false,
                Window {
                    stride: 2,
                    padding: 1,
                    ..Window::new(3, 2)
                },
            ),
            (
                3,
                20,
                (4, 4),
                false,
                Window {
                    padding: 1,
                    ..Window::new(3, 3)
                },
            ),
            (
                2,
                3,
                (5, 5),
                true,
                Window {
                    dilation: 2,
                    padding: 2,
                    ..Window::new(2, 3)
                },
            ),
            (1, 17, (3, 3), true, Window::new(2, 2)),
        ];
        for (ci, (channels, batch, (height, width), complex, win)) in cases.into_iter().enumerate()
        {
            let m = FeatureMaps {
                channels,
                batch,
                height,
                width,
            };
            let klen = channels * win.kernel.0 * win.kernel.1;
            let (ho, wo) = win.output("t", height, width).unwrap();
            let make = |r: usize, c: usize, seed: u64| {
                if complex {
                    complex_matrix(r, c, seed)
                } else {
                    real_matrix(r, c, seed)
                }
            };
            let (xv, kv) = (make(channels, batch * height * width, 1), make(3, klen, 2));
            let gv = make(3, batch * ho * wo, 3);
            // the default workspace, and blocks of 5 and 1 patch columns (rows of the
            // output cut anywhere)
            for bc in [0, 5, 1] {
                let t = Tape::new();
                let (x, k) = (t.leaf(xv.clone()).unwrap(), t.leaf(kv.clone()).unwrap());
                let y = conv_blocked(x, &m, k, &win, bc);
                assert_fused_matches_recorded(
                    &format!("case {ci}, block {bc}"),
                    &t,
                    (x, k, y),
                    (&xv, &kv, &gv),
                    &m,
                    &win,
                );
            }
        }
    }

    /// Sixteen images 8×32×32 and 16 kernels 3×3 (padding 1), large enough for the fused
    /// passes to run in two groups of images on a 2-thread pool and in one on a 1-thread
    /// pool: the same bits either way (the kernels' cotangent sums fixed chunks of images
    /// whatever the thread count), and the forward equals the definition.
    #[test]
    fn fused_conv_gives_the_same_bits_on_one_and_two_threads() {
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
        let (xv, kv, gv) = (
            real_matrix(8, 16 * 1024, 4),
            real_matrix(16, 72, 5),
            real_matrix(16, 16 * 1024, 6),
        );
        let run = |threads: usize| -> Vec<Value> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let t = Tape::new();
                let (x, k) = (t.leaf(xv.clone()).unwrap(), t.leaf(kv.clone()).unwrap());
                let y = conv2d(x, &m, k, None, &win).unwrap();
                let mut out = vec![y.value()];
                out.extend(t.vjp(&[y], std::slice::from_ref(&gv), &[x, k]).unwrap());
                out
            })
        };
        let (one, two) = (run(1), run(2));
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!(
                a.axpy(-1.0, b).unwrap().max_abs() == 0.0,
                "output {i} differs"
            );
        }
        let expect = direct(xv.as_real().unwrap(), &m, kv.as_real().unwrap(), &win);
        assert!(two[0].rel_diff(&Value::Real(expect)).unwrap() < 1e-14);
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
            let expect = Value::Real(direct(x.as_real().unwrap(), &m, k.as_real().unwrap(), &win));
            assert!(y.rel_diff(&expect).unwrap() < 1e-14, "{win:?}");
            // workspaces of 7 and 1 patch columns: the same output
            for bc in [7, 1] {
                let (xc, kc) = (
                    t.constant(x.clone()).unwrap(),
                    t.constant(k.clone()).unwrap(),
                );
                let yb = conv_blocked(xc, &m, kc, &win, bc).value();
                assert!(yb.rel_diff(&expect).unwrap() < 1e-14, "{win:?}, block {bc}");
            }
        }
    }

    /// One image 4×128×256 with a 3×3 window: 36 × 32 768 patch entries, more than a
    /// workspace holds ([`WORKSPACE_MAX_ENTRIES`]), so the fused passes take two blocks of
    /// columns; the forward equals the definition and the unrecorded cotangents the
    /// recorded ones (within rounding).
    #[test]
    fn a_large_image_is_processed_in_column_blocks() {
        let m = FeatureMaps {
            channels: 4,
            batch: 1,
            height: 128,
            width: 256,
        };
        let win = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let p = Patches::new("t", &m, &win).unwrap();
        assert_eq!(p.blocks().count(), 2);
        let (xv, kv, gv) = (
            real_matrix(4, 128 * 256, 7),
            real_matrix(2, 36, 8),
            real_matrix(2, 128 * 256, 9),
        );
        let t = Tape::new();
        let (x, k) = (t.leaf(xv.clone()).unwrap(), t.leaf(kv.clone()).unwrap());
        let y = conv2d(x, &m, k, None, &win).unwrap();
        let expect = direct(xv.as_real().unwrap(), &m, kv.as_real().unwrap(), &win);
        assert!(y.value().rel_diff(&Value::Real(expect)).unwrap() < 1e-14);
        assert_fused_matches_recorded("4×128×256", &t, (x, k, y), (&xv, &kv, &gv), &m, &win);
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
        // a complex input with real kernels: an error naming conv2d and both dtypes
        let xc = t.leaf(complex_matrix(2, 9, 5)).unwrap();
        let e = conv2d(
            xc,
            &m,
            t.leaf(real_matrix(4, 8, 6)).unwrap(),
            None,
            &Window::new(2, 2),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("conv2d") && e.contains("dtype"), "{e}");
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
