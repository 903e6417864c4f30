//! Analytic Convolutional Layer (Cui et al., arXiv 2407.06087): kernel banks generated on
//! the kernel grid from a few analytic kernel parameters (AKPs), mixed with ordinary learned
//! kernels.
//!
//! **Grid.** A `kh×kw` kernel's taps, row-major (tap `t = i·kw + j`, the column order of
//! [`crate::conv2d`]'s kernels), sit at `x = j − (kw−1)/2` (right) and `y = i − (kh−1)/2`
//! (down). For `m` kernels with angles θ (an `m×1` column), the rotated coordinates are the
//! `m × (kh·kw)` matrices `x′ = cos θ xᵀ + sin θ yᵀ`, `y′ = −sin θ xᵀ + cos θ yᵀ` (outer
//! products of a parameter column with a constant grid row); `cos θ`, `sin θ` are the real and
//! imaginary parts of `exp(iθ)`.
//!
//! **Families** (one kernel per row; positivity by parameterisation: σ, λ, γ are stored as
//! logarithms, so every parameter value is admissible and gradients are unconstrained):
//! - [`gabor_bank`], AKPs `[log σ, θ, log λ, log γ, ψ]`:
//!   `g = exp(−(x′² + γ²y′²)/(2σ²)) cos(2πx′/λ + ψ) = Re exp(−(x′² + γ²y′²)/(2σ²) + i(2πx′/λ + ψ))`.
//! - [`log_bank`], AKP `[log σ]`: `−(1/(πσ⁴))(1 − q)e^{−q}`, `q = (x² + y²)/(2σ²)`.
//! - [`gaussian_derivative_bank`] (TGD-like), AKPs `[log σ, θ]` with a fixed derivative order
//!   n and aspect ρ: `∂ⁿ/∂x′ⁿ G`, `G = exp(−x′²/(2σ²) − y′²/(2ρ²σ²))/(2πρσ²)`, i.e.
//!   `(−1/σ)ⁿ Heₙ(x′/σ) G` with the probabilists' Hermite polynomials
//!   (`He₀ = 1, He₁ = u, Heₙ₊₁ = u Heₙ − n Heₙ₋₁`).
//!
//! Every bank is a composition of engine ops (outer products, entrywise exp, the complex
//! exponential and its real part, Hadamard products), so `∂L/∂p = Σ_{u,v} W̄(u,v) ∂g(u,v;p)/∂p`
//! — and its JVP and second order — come from the engine. [`AnalyticBank`] mixes the families
//! with learned kernels into one `C_out × (C_in·kh·kw)` kernel matrix for [`crate::conv2d`],
//! and [`AnalyticBank::table`] / [`tile_kernels`] show what was learned.
//! Derivation: docs/math/acl.md.

use matgrad_engine::{Error, Value, Var, C64};

use crate::error::Result;
use crate::train::{Bound, Init, ParamId, ParamSet};

/// The centred tap coordinates `(x, y)` of a `kh×kw` grid, row-major.
pub fn kernel_grid(kh: usize, kw: usize) -> (Vec<f64>, Vec<f64>) {
    let (cx, cy) = ((kw as f64 - 1.0) / 2.0, (kh as f64 - 1.0) / 2.0);
    (0..kh * kw)
        .map(|t| ((t % kw) as f64 - cx, (t / kw) as f64 - cy))
        .unzip()
}

fn row<'t>(like: Var<'t>, v: &[f64]) -> Result<Var<'t>> {
    like.tape()
        .constant(Value::Real(faer::Mat::from_fn(1, v.len(), |_, j| v[j])))
}

fn check_params(
    op: &'static str,
    p: Var<'_>,
    cols: usize,
    names: &str,
    k: (usize, usize),
) -> Result<()> {
    if p.shape().1 != cols || p.shape().0 == 0 || p.dtype() != matgrad_engine::DType::F64 {
        return Err(Error::InvalidArgument {
            op,
            message: format!(
                "the parameters are a {:?} {:?} matrix; they must be real m×{cols} (one row per kernel: {names})",
                p.shape(),
                p.dtype()
            ),
        });
    }
    if k.0 == 0 || k.1 == 0 {
        return Err(Error::InvalidArgument {
            op,
            message: format!("the kernel size {}×{} must be positive", k.0, k.1),
        });
    }
    Ok(())
}

/// `(x′, y′)` for the angles in the column `theta` (`m × (kh·kw)` each).
fn rotated<'t>(theta: Var<'t>, kh: usize, kw: usize) -> Result<(Var<'t>, Var<'t>)> {
    let (gx, gy) = kernel_grid(kh, kw);
    let (x, y) = (row(theta, &gx)?, row(theta, &gy)?);
    let e = theta
        .to_complex()?
        .scale_complex(C64::new(0.0, 1.0))?
        .exp()?;
    let (c, s) = (e.real()?, e.imag()?);
    let xr = c.matmul(x)?.add(s.matmul(y)?)?;
    let yr = c.matmul(y)?.sub(s.matmul(x)?)?;
    Ok((xr, yr))
}

/// Column `j` of `p` broadcast to `m × k`.
fn col<'t>(p: Var<'t>, j: usize) -> Result<Var<'t>> {
    p.slice(0..p.shape().0, j..j + 1)
}

fn wide<'t>(v: Var<'t>, k: usize) -> Result<Var<'t>> {
    v.broadcast_to(v.shape().0, k)
}

/// Gabor kernels, one per row of `params` (`m×5`: `[log σ, θ, log λ, log γ, ψ]`):
/// the `m × (kh·kw)` bank.
///
/// ```
/// use matgrad_engine::{Tape, Value};
/// use matgrad_layers::gabor_bank;
/// # fn main() -> Result<(), matgrad_layers::Error> {
/// let tape = Tape::new();
/// // σ = 1.5, θ = 0, λ = 4, γ = 1, ψ = 0
/// let p = tape.leaf(Value::Real(faer::mat![[1.5f64.ln(), 0.0, 4f64.ln(), 0.0, 0.0]]))?;
/// let g = gabor_bank(p, 5, 5)?;
/// assert_eq!(g.shape(), (1, 25));
/// let v = g.value();
/// assert!((v.as_real().unwrap()[(0, 12)] - 1.0).abs() < 1e-15); // centre tap
/// # Ok(()) }
/// ```
///
/// # Errors
/// `params` not real `m×5`, a zero kernel size; overflow for extreme parameters — naming
/// `gabor_bank`.
pub fn gabor_bank<'t>(params: Var<'t>, kh: usize, kw: usize) -> Result<Var<'t>> {
    const OP: &str = "gabor_bank";
    check_params(OP, params, 5, "log σ, θ, log λ, log γ, ψ", (kh, kw))?;
    let k = kh * kw;
    let go = || -> Result<Var<'t>> {
        let (xr, yr) = rotated(col(params, 1)?, kh, kw)?;
        // 1/(2σ²) = exp(−2 log σ)/2, γ² = exp(2 log γ), 2π/λ = 2π exp(−log λ)
        let inv2s2 = wide(col(params, 0)?.scale(-2.0)?.exp()?.scale(0.5)?, k)?;
        let gamma2 = wide(col(params, 3)?.scale(2.0)?.exp()?, k)?;
        let freq = wide(
            col(params, 2)?.neg()?.exp()?.scale(std::f64::consts::TAU)?,
            k,
        )?;
        let psi = wide(col(params, 4)?, k)?;
        let quad = xr.mul(xr)?.add(gamma2.mul(yr.mul(yr)?)?)?;
        let envelope = quad.mul(inv2s2)?.neg()?;
        let phase = xr.mul(freq)?.add(psi)?;
        envelope
            .to_complex()?
            .add(phase.to_complex()?.scale_complex(C64::new(0.0, 1.0))?)?
            .exp()?
            .real()
    };
    go().map_err(|e| e.within(OP))
}

/// Laplacian-of-Gaussian kernels, one per row of `params` (`m×1`: `[log σ]`):
/// `−(1/(πσ⁴))(1 − q)e^{−q}`, `q = r²/(2σ²)`.
///
/// # Errors
/// `params` not real `m×1`, a zero kernel size — naming `log_bank`.
pub fn log_bank<'t>(params: Var<'t>, kh: usize, kw: usize) -> Result<Var<'t>> {
    const OP: &str = "log_bank";
    check_params(OP, params, 1, "log σ", (kh, kw))?;
    let k = kh * kw;
    let go = || -> Result<Var<'t>> {
        let (gx, gy) = kernel_grid(kh, kw);
        let r2: Vec<f64> = gx.iter().zip(&gy).map(|(x, y)| x * x + y * y).collect();
        let q = params
            .scale(-2.0)?
            .exp()?
            .scale(0.5)?
            .matmul(row(params, &r2)?)?;
        let coef = wide(
            params
                .scale(-4.0)?
                .exp()?
                .scale(-1.0 / std::f64::consts::PI)?,
            k,
        )?;
        coef.mul(q.neg()?.add_scalar(1.0)?)?.mul(q.neg()?.exp()?)
    };
    go().map_err(|e| e.within(OP))
}

/// Oriented Gaussian-derivative kernels (TGD-like), one per row of `params` (`m×2`:
/// `[log σ, θ]`): the `order`-th derivative along `x′` of a Gaussian with standard deviation σ
/// along `x′` and `aspect·σ` across, normalised to unit integral.
///
/// # Errors
/// `params` not real `m×2`, a zero kernel size, a non-positive or non-finite aspect — naming
/// `gaussian_derivative_bank`.
pub fn gaussian_derivative_bank<'t>(
    params: Var<'t>,
    order: usize,
    aspect: f64,
    kh: usize,
    kw: usize,
) -> Result<Var<'t>> {
    const OP: &str = "gaussian_derivative_bank";
    check_params(OP, params, 2, "log σ, θ", (kh, kw))?;
    if !(aspect.is_finite() && aspect > 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "the aspect ratio {aspect} must be finite and positive (1 = isotropic)"
            ),
        });
    }
    let k = kh * kw;
    let go = || -> Result<Var<'t>> {
        let (xr, yr) = rotated(col(params, 1)?, kh, kw)?;
        let log_s = col(params, 0)?;
        let inv_s = wide(log_s.neg()?.exp()?, k)?;
        let u = xr.mul(inv_s)?;
        let v = yr.mul(inv_s)?.scale(1.0 / aspect)?;
        // G = exp(−(u² + v²)/2) / (2π ρ σ²)
        let norm = wide(
            log_s
                .scale(-2.0)?
                .exp()?
                .scale(1.0 / (std::f64::consts::TAU * aspect))?,
            k,
        )?;
        let g = u.mul(u)?.add(v.mul(v)?)?.scale(-0.5)?.exp()?.mul(norm)?;
        // Heₙ(u) by the three-term recurrence
        let (mut prev, mut he) = (None::<Var<'t>>, u.scale(0.0)?.add_scalar(1.0)?);
        for n in 0..order {
            let next = match prev {
                None => u,
                Some(p) => u.mul(he)?.sub(p.scale(n as f64)?)?,
            };
            prev = Some(he);
            he = next;
        }
        // (−1/σ)ⁿ
        let sign = if order % 2 == 1 { -1.0 } else { 1.0 };
        let scale = wide(log_s.scale(-(order as f64))?.exp()?.scale(sign)?, k)?;
        he.mul(g)?.mul(scale)
    };
    go().map_err(|e| e.within(OP))
}

/// One analytic family of an [`AnalyticBank`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    /// Gabor kernels, AKPs `[log σ, θ, log λ, log γ, ψ]`.
    Gabor,
    /// Laplacian of Gaussian, AKP `[log σ]`.
    LoG,
    /// Oriented Gaussian derivative of the given order and aspect, AKPs `[log σ, θ]`.
    GaussianDerivative {
        /// Derivative order n ≥ 0 along x′.
        order: usize,
        /// σ across / σ along.
        aspect: f64,
    },
}

impl Family {
    /// Number of AKPs per kernel.
    pub fn params(self) -> usize {
        match self {
            Family::Gabor => 5,
            Family::LoG => 1,
            Family::GaussianDerivative { .. } => 2,
        }
    }

    /// The AKP names, in column order (σ, λ, γ stored as logarithms).
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Family::Gabor => &["sigma", "theta", "lambda", "gamma", "psi"],
            Family::LoG => &["sigma"],
            Family::GaussianDerivative { .. } => &["sigma", "theta"],
        }
    }

    fn logged(self, j: usize) -> bool {
        match self {
            Family::Gabor => matches!(j, 0 | 2 | 3),
            Family::LoG => true,
            Family::GaussianDerivative { .. } => j == 0,
        }
    }

    fn label(self) -> String {
        match self {
            Family::Gabor => "gabor".into(),
            Family::LoG => "log".into(),
            Family::GaussianDerivative { order, .. } => format!("gd{order}"),
        }
    }

    /// The bank of this family for `params` (one kernel per row).
    ///
    /// # Errors
    /// As the family's bank function.
    pub fn bank<'t>(self, params: Var<'t>, kh: usize, kw: usize) -> Result<Var<'t>> {
        match self {
            Family::Gabor => gabor_bank(params, kh, kw),
            Family::LoG => log_bank(params, kh, kw),
            Family::GaussianDerivative { order, aspect } => {
                gaussian_derivative_bank(params, order, aspect, kh, kw)
            }
        }
    }

    /// Seeded initial AKPs for `m` kernels: σ = 1.5 (LoG 1) spread by ±20 %, θ evenly over
    /// [0, π), λ = kernel width·0.6, γ = 1, ψ = 0.
    fn init(self, m: usize, kh: usize, kw: usize) -> faer::Mat<f64> {
        let side = kh.max(kw) as f64;
        faer::Mat::from_fn(m, self.params(), |i, j| {
            let t = if m > 1 {
                i as f64 / (m - 1) as f64
            } else {
                0.5
            };
            let theta = std::f64::consts::PI * i as f64 / m as f64;
            let sigma = (side / 5.0).max(0.8) * (0.8 + 0.4 * t);
            match (self, j) {
                (Family::LoG, _) => (sigma * 0.8).ln(),
                (_, 0) => sigma.ln(),
                (_, 1) => theta,
                (Family::Gabor, 2) => (side * 0.6).ln(),
                _ => 0.0, // log γ = 0, ψ = 0
            }
        })
    }
}

/// A convolution kernel bank mixing analytic families with ordinary learned kernels:
/// `C_out = Σ counts + learned` output channels over `in_channels` inputs. For more than one
/// input channel each (output, input) pair has its own analytic kernel (row `c·m + o` of
/// the family's `(m·C) × (kh·kw)` bank, m its output channels).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticBank {
    /// `(family, number of output channels)`, in output-channel order.
    pub families: Vec<(Family, usize)>,
    /// Ordinary learned kernels after the analytic ones.
    pub learned: usize,
    /// Input channels C.
    pub in_channels: usize,
    /// Kernel size.
    pub kernel: (usize, usize),
}

/// The parameter ids of an [`AnalyticBank`] in a [`ParamSet`].
#[derive(Clone, Debug)]
pub struct AnalyticParams {
    /// One AKP matrix per family (`(count·C) × params`).
    pub families: Vec<ParamId>,
    /// The learned kernels (`learned × C·kh·kw`), if any.
    pub learned: Option<ParamId>,
}

/// One row of [`AnalyticBank::table`]: a kernel's family and its AKPs in natural units.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelRow {
    /// Output channel.
    pub channel: usize,
    /// Input channel.
    pub input: usize,
    /// Family label (`gabor`, `log`, `gdN`, `learned`).
    pub family: String,
    /// `(name, value)` with σ, λ, γ exponentiated and θ reduced to [0, π) (a kernel at θ + π
    /// is the same up to ψ's sign for Gabor and n's parity for derivatives; reported as is
    /// otherwise).
    pub params: Vec<(&'static str, f64)>,
}

impl AnalyticBank {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.families.iter().map(|f| f.1).sum::<usize>() + self.learned
    }

    /// Number of trainable scalars.
    pub fn param_count(&self) -> usize {
        let (kh, kw) = self.kernel;
        self.families
            .iter()
            .map(|(f, m)| f.params() * m * self.in_channels)
            .sum::<usize>()
            + self.learned * self.in_channels * kh * kw
    }

    /// Adds the bank's parameters to `ps` under `name.<family index>` and `name.learned`
    /// (learned kernels He-initialised: sd √(2/(C·kh·kw))).
    ///
    /// # Errors
    /// A duplicate name; an empty bank.
    pub fn init(&self, ps: &mut ParamSet, name: &str) -> Result<AnalyticParams> {
        if self.out_channels() == 0 || self.in_channels == 0 {
            return Err(Error::InvalidArgument {
                op: "analytic_bank",
                message: "the bank has no kernels or no input channels; give at least one family count or learned kernel".into(),
            });
        }
        let (kh, kw) = self.kernel;
        let mut families = Vec::new();
        for (i, (f, m)) in self.families.iter().enumerate() {
            let v = f.init(m * self.in_channels, kh, kw);
            families.push(ps.add_value(&format!("{name}.{i}.{}", f.label()), Value::Real(v))?);
        }
        let learned = if self.learned > 0 {
            Some(ps.add(
                &format!("{name}.learned"),
                self.learned,
                self.in_channels * kh * kw,
                Init::Normal((2.0 / (self.in_channels * kh * kw) as f64).sqrt()),
            )?)
        } else {
            None
        };
        Ok(AnalyticParams { families, learned })
    }

    /// The `C_out × (C·kh·kw)` kernel matrix for [`crate::conv2d`].
    ///
    /// # Errors
    /// Parameters of the wrong shape (a `ParamSet` that does not match the bank).
    pub fn kernels<'t>(&self, p: &Bound<'t>, ids: &AnalyticParams) -> Result<Var<'t>> {
        let (kh, kw) = self.kernel;
        let c = self.in_channels;
        let mut blocks = Vec::new();
        for ((f, m), id) in self.families.iter().zip(&ids.families) {
            if *m == 0 {
                continue;
            }
            // rows c·m … (c+1)·m − 1 of the family bank are input channel c's kernels
            let bank = f.bank(p.get(*id), kh, kw)?;
            let per_input = (0..c)
                .map(|ci| bank.slice(ci * m..(ci + 1) * m, 0..kh * kw))
                .collect::<Result<Vec<_>>>()?;
            blocks.push(Var::hcat(&per_input)?);
        }
        if let Some(id) = ids.learned {
            blocks.push(p.get(id));
        }
        Var::vcat(&blocks)
    }

    /// Every kernel's family and AKPs in natural units, from the current parameter values.
    pub fn table(&self, ps: &ParamSet, ids: &AnalyticParams) -> Vec<KernelRow> {
        let mut out = Vec::new();
        let mut channel = 0;
        for ((f, m), id) in self.families.iter().zip(&ids.families) {
            let v = ps.get(*id);
            let Some(v) = v.as_real() else { continue };
            for c in 0..self.in_channels {
                for o in 0..*m {
                    let r = c * m + o;
                    let params = f
                        .param_names()
                        .iter()
                        .enumerate()
                        .map(|(j, name)| {
                            let x = v[(r, j)];
                            let x = if f.logged(j) {
                                x.exp()
                            } else if *name == "theta" {
                                x.rem_euclid(std::f64::consts::PI)
                            } else {
                                x
                            };
                            (*name, x)
                        })
                        .collect();
                    out.push(KernelRow {
                        channel: channel + o,
                        input: c,
                        family: f.label(),
                        params,
                    });
                }
            }
            channel += m;
        }
        for o in 0..self.learned {
            for c in 0..self.in_channels {
                out.push(KernelRow {
                    channel: channel + o,
                    input: c,
                    family: "learned".into(),
                    params: Vec::new(),
                });
            }
        }
        out
    }
}

/// The rows of `k` (kernels, `C_out × (C·kh·kw)`; input channel `c`'s `kh×kw` block each) as a
/// grey mosaic with `cols` kernels per row and a one-pixel gap: values in [0, 1], each kernel
/// scaled by its own largest magnitude (0.5 = zero, gaps 1). Row-major `(height, width, pixels)`.
pub fn tile_kernels(
    k: &faer::Mat<f64>,
    kh: usize,
    kw: usize,
    cols: usize,
) -> (usize, usize, Vec<f64>) {
    let per = kh * kw;
    if per == 0 || cols == 0 || k.ncols() % per != 0 {
        return (0, 0, Vec::new());
    }
    let tiles: Vec<(usize, usize)> = (0..k.nrows())
        .flat_map(|o| (0..k.ncols() / per).map(move |c| (o, c)))
        .collect();
    let rows = tiles.len().div_ceil(cols);
    let (w, h) = (cols * (kw + 1) + 1, rows * (kh + 1) + 1);
    let mut px = vec![1.0; w * h];
    for (n, (o, c)) in tiles.iter().enumerate() {
        let big = (0..per)
            .map(|t| k[(*o, c * per + t)].abs())
            .fold(0.0, f64::max);
        let (ty, tx) = (n / cols, n % cols);
        for t in 0..per {
            let v = k[(*o, c * per + t)];
            let g = if big > 0.0 { 0.5 + 0.5 * v / big } else { 0.5 };
            px[(1 + ty * (kh + 1) + t / kw) * w + 1 + tx * (kw + 1) + t % kw] = g;
        }
    }
    (h, w, px)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::assert_rules;
    use matgrad_engine::Tape;
    use std::f64::consts::PI;

    fn at(v: &Value, i: usize, j: usize) -> f64 {
        v.as_real().unwrap()[(i, j)]
    }

    /// float64 evaluation of a closed form through a handful of exp/cos: a few ulps
    const CLOSED_FORM: f64 = 1e-14;

    #[test]
    fn gabor_matches_the_closed_form() {
        let t = Tape::new();
        let (s, th, l, g, psi): (f64, f64, f64, f64, f64) = (1.3, 0.7, 3.1, 0.6, 0.4);
        let p = t
            .leaf(Value::Real(faer::mat![
                [s.ln(), th, l.ln(), g.ln(), psi],
                [0.0, -2.0, 1.0, 0.3, -1.0]
            ]))
            .unwrap();
        let b = gabor_bank(p, 5, 7).unwrap().value();
        let (gx, gy) = kernel_grid(5, 7);
        for t in 0..35 {
            let (x, y) = (gx[t], gy[t]);
            let xr = x * th.cos() + y * th.sin();
            let yr = -x * th.sin() + y * th.cos();
            let want = (-(xr * xr + g * g * yr * yr) / (2.0 * s * s)).exp()
                * (2.0 * PI * xr / l + psi).cos();
            assert!((at(&b, 0, t) - want).abs() < CLOSED_FORM, "tap {t}");
        }
        // grid: tap 0 is the top-left corner (−3, −2), the last the bottom-right (3, 2)
        assert_eq!((gx[0], gy[0], gx[34], gy[34]), (-3.0, -2.0, 3.0, 2.0));
    }

    #[test]
    fn log_and_derivatives_match_closed_forms() {
        let t = Tape::new();
        let s = 1.2f64;
        let p = t.leaf(Value::Real(faer::mat![[s.ln()], [0.3]])).unwrap();
        let b = log_bank(p, 5, 5).unwrap().value();
        let (gx, gy) = kernel_grid(5, 5);
        for t in 0..25 {
            let q = (gx[t] * gx[t] + gy[t] * gy[t]) / (2.0 * s * s);
            let want = -(1.0 - q) * (-q).exp() / (PI * s.powi(4));
            assert!((at(&b, 0, t) - want).abs() < CLOSED_FORM);
        }
        let (s, th, rho) = (1.1f64, 0.9f64, 0.5);
        let p = t.leaf(Value::Real(faer::mat![[s.ln(), th]])).unwrap();
        for order in 0..4 {
            let b = gaussian_derivative_bank(p, order, rho, 5, 5)
                .unwrap()
                .value();
            for t in 0..25 {
                let (x, y) = (gx[t], gy[t]);
                let u = x * th.cos() + y * th.sin();
                let v = -x * th.sin() + y * th.cos();
                let g = (-u * u / (2.0 * s * s) - v * v / (2.0 * rho * rho * s * s)).exp()
                    / (2.0 * PI * rho * s * s);
                // ∂ⁿ/∂uⁿ of exp(−u²/2σ²), by hand
                let d = match order {
                    0 => 1.0,
                    1 => -u / (s * s),
                    2 => u * u / s.powi(4) - 1.0 / (s * s),
                    _ => -u.powi(3) / s.powi(6) + 3.0 * u / s.powi(4),
                };
                assert!(
                    (at(&b, 0, t) - d * g).abs() < CLOSED_FORM,
                    "order {order} tap {t}"
                );
            }
        }
    }

    #[test]
    fn orientation_rotates_the_kernel() {
        // a first-derivative kernel at θ = π/2 is the θ = 0 kernel transposed on a square grid
        let t = Tape::new();
        let p = t
            .leaf(Value::Real(faer::mat![[0.2, 0.0], [0.2, PI / 2.0]]))
            .unwrap();
        let b = gaussian_derivative_bank(p, 1, 1.0, 5, 5).unwrap().value();
        for i in 0..5 {
            for j in 0..5 {
                assert!((at(&b, 0, i * 5 + j) - at(&b, 1, j * 5 + i)).abs() < CLOSED_FORM);
            }
        }
        // and the θ = 0 kernel is odd in x, even in y
        assert!((at(&b, 0, 5 + 1) + at(&b, 0, 5 + 3)).abs() < CLOSED_FORM);
        assert!((at(&b, 0, 5 + 1) - at(&b, 0, 15 + 1)).abs() < CLOSED_FORM);
        assert!(at(&b, 0, 12 + 1) < 0.0); // right of centre: −u/σ² G < 0
    }

    #[test]
    fn banks_rules() {
        let gabor = Value::Real(faer::mat![
            [0.3, 0.7, 1.1, -0.2, 0.4],
            [0.1, 2.5, 0.9, 0.3, -1.2]
        ]);
        assert_rules("gabor_bank", |_, v| gabor_bank(v[0], 3, 4), &[gabor]);
        assert_rules(
            "log_bank",
            |_, v| log_bank(v[0], 3, 3),
            &[Value::Real(faer::mat![[0.2], [-0.1]])],
        );
        for order in [1, 2, 3] {
            assert_rules(
                "gaussian_derivative_bank",
                |_, v| gaussian_derivative_bank(v[0], order, 0.7, 3, 3),
                &[Value::Real(faer::mat![[0.3, 0.5], [-0.1, 2.0]])],
            );
        }
    }

    #[test]
    fn errors_name_the_op() {
        let t = Tape::new();
        let p = t.leaf(Value::Real(faer::Mat::zeros(2, 4))).unwrap();
        let e = gabor_bank(p, 3, 3).unwrap_err().to_string();
        assert!(e.contains("gabor_bank") && e.contains("m×5"), "{e}");
        let p1 = t.leaf(Value::Real(faer::Mat::zeros(2, 1))).unwrap();
        assert!(log_bank(p1, 0, 3)
            .unwrap_err()
            .to_string()
            .contains("kernel size"));
        let p2 = t.leaf(Value::Real(faer::Mat::zeros(2, 2))).unwrap();
        let e = gaussian_derivative_bank(p2, 1, -1.0, 3, 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("aspect"), "{e}");
        let big = t.leaf(Value::Real(faer::mat![[-400.0]])).unwrap();
        assert!(log_bank(big, 3, 3).is_err(), "σ = e^-400 overflows 1/σ⁴");
    }

    #[test]
    fn mixed_bank_shapes_table_and_picture() {
        let bank = AnalyticBank {
            families: vec![
                (Family::Gabor, 2),
                (Family::LoG, 1),
                (
                    Family::GaussianDerivative {
                        order: 1,
                        aspect: 1.0,
                    },
                    1,
                ),
            ],
            learned: 2,
            in_channels: 3,
            kernel: (5, 5),
        };
        assert_eq!(bank.out_channels(), 6);
        assert_eq!(bank.param_count(), 3 * (2 * 5 + 1 + 2) + 2 * 75);
        let mut ps = ParamSet::new(0);
        let ids = bank.init(&mut ps, "acl").unwrap();
        assert_eq!(ps.count(), bank.param_count());
        let tape = Tape::new();
        let b = ps.bind(&tape).unwrap();
        let k = bank.kernels(&b, &ids).unwrap();
        assert_eq!(k.shape(), (6, 75));
        // output channel 1, input channel 2 is row 1 + 2·2 of the Gabor family bank
        let g = gabor_bank(b.get(ids.families[0]), 5, 5).unwrap().value();
        let kv = k.value();
        for t in 0..25 {
            assert_eq!(at(&kv, 1, 2 * 25 + t), at(&g, 2 * 2 + 1, t));
        }
        let table = bank.table(&ps, &ids);
        assert_eq!(table.len(), 6 * 3);
        assert_eq!(table[0].family, "gabor");
        assert!(table[0].params.iter().all(|(_, v)| v.is_finite()));
        let (h, w, px) = tile_kernels(kv.as_real().unwrap(), 5, 5, 6);
        assert_eq!((h, w), (3 * 6 + 1, 6 * 6 + 1));
        assert!(px.iter().all(|v| (0.0..=1.0).contains(v)));
        // gradients reach every AKP
        let grads = b.grad(k.sum(matgrad_engine::Axis::All).unwrap()).unwrap();
        assert!(grads.iter().all(|g| g.as_real().unwrap().norm_l2() > 0.0));
    }
}
