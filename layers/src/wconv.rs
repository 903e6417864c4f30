//! Weighted convolution (Cammarasana & Patanè, arXiv 2505.24527): each kernel tap is scaled by
//! a density of its offset from the centre, `K_eff = K ∘ Φ`, `Φ = αβᵀ` (`kh×kw`, the same for
//! every output and input channel).
//!
//! On the kernel layout of [`crate::conv2d`] (`C_out × (C·kh·kw)`, taps row-major) the mask
//! is the row `φ = vec_row(αβᵀ)` repeated for each input channel and broadcast over the rows:
//! `K_eff = K ∘ (1 ⊗ [φ, …, φ])`. Rules (from `matmul`, `mul`, `hcat`, `broadcast_to`):
//! `K̄ = Φ ∘ K̄_eff`; with `S = Σ_{o,c} K̄_eff[o, c] ∘ K[o, c]` (a `kh×kw` matrix),
//! `ᾱ = S β`, `β̄ = Sᵀ α`, and for the tied density `α = β` the two add: `ᾱ = (S + Sᵀ)α`.
//!
//! The authors' code ties the density: `α = β = [den, 1, reverse(den)]` for a `(2m+1)`-tap
//! kernel with `den ∈ ℝ^m` — the centre tap fixed at 1, the profile symmetric
//! ([`tied_density`]). The paper optimises `den` by DIRECT-L ([`crate::direct_l`]); the engine
//! gives its exact gradient as well. Derivation: docs/math/wconv.md.

use matgrad_engine::{Error, Value, Var};

use crate::conv2d::{conv2d, FeatureMaps, Window};
use crate::error::Result;

/// `[den; 1; reverse(den)]` (`(2m+1) × 1`) from a density column `den` (`m × 1`, real).
///
/// # Errors
/// `den` not a real column — naming `tied_density`.
pub fn tied_density(den: Var<'_>) -> Result<Var<'_>> {
    const OP: &str = "tied_density";
    let (m, n) = den.shape();
    if n != 1 || den.dtype() != matgrad_engine::DType::F64 {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "the density is a {m}×{n} {:?} matrix; it must be a real column (one value per tap from the border to the centre)",
                den.dtype()
            ),
        });
    }
    let one = den.tape().constant(Value::Real(faer::mat![[1.0]]))?;
    if m == 0 {
        return Ok(one);
    }
    let rev: Vec<usize> = (0..m).rev().collect();
    Var::vcat(&[den, one, den.take_rows(&rev)?]).map_err(|e| e.within(OP))
}

/// `K ∘ Φ` for kernels `k` (`C_out × (C·kh·kw)`) and `Φ = αβᵀ` with `α` (`kh×1`) and `β`
/// (`kw×1`): every input channel's `kh×kw` block scaled tap by tap.
///
/// # Errors
/// Shapes (`α`, `β` columns whose lengths multiply with `channels` to K's width), dtypes —
/// naming `weighted_kernels`.
pub fn weighted_kernels<'t>(
    k: Var<'t>,
    alpha: Var<'t>,
    beta: Var<'t>,
    channels: usize,
) -> Result<Var<'t>> {
    const OP: &str = "weighted_kernels";
    let (kh, kw) = (alpha.shape().0, beta.shape().0);
    if alpha.shape().1 != 1
        || beta.shape().1 != 1
        || channels == 0
        || k.shape().1 != channels * kh * kw
    {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "kernels {:?}, α {:?}, β {:?} with {channels} input channels: α (kh×1) and β (kw×1) must be columns and the kernels C_out × (C·kh·kw)",
                k.shape(),
                alpha.shape(),
                beta.shape()
            ),
        });
    }
    let go = || -> Result<Var<'t>> {
        // row-major taps of αβᵀ: vec of its transpose
        let phi = alpha
            .matmul(beta.transpose()?)?
            .transpose()?
            .vec()?
            .transpose()?;
        let tiled = if channels == 1 {
            phi
        } else {
            Var::hcat(&vec![phi; channels])?
        };
        k.mul(tiled.broadcast_to(k.shape().0, k.shape().1)?)
    };
    go().map_err(|e| e.within(OP))
}

/// Weighted convolution: [`conv2d`] with kernels `K ∘ αβᵀ` (see [`weighted_kernels`]); the
/// window's kernel size must be `(len α, len β)`.
///
/// ```
/// use matgrad_engine::{Tape, testing::real_matrix, Value};
/// use matgrad_layers::{tied_density, weighted_conv2d, FeatureMaps, Window};
/// # fn main() -> Result<(), matgrad_layers::Error> {
/// let tape = Tape::new();
/// let maps = FeatureMaps { channels: 2, batch: 1, height: 6, width: 6 };
/// let x = tape.leaf(real_matrix(2, 36, 1))?;
/// let k = tape.leaf(real_matrix(3, 2 * 9, 2))?;
/// let den = tape.leaf(Value::Real(faer::mat![[0.5]]))?;       // α = β = [0.5, 1, 0.5]
/// let a = tied_density(den)?;
/// let y = weighted_conv2d(x, &maps, k, a, a, None, &Window { padding: 1, ..Window::new(3, 3) })?;
/// assert_eq!(y.shape(), (3, 36));
/// # Ok(()) }
/// ```
///
/// # Errors
/// As [`weighted_kernels`] and [`conv2d`]; a window whose kernel size differs from the
/// density lengths — naming `weighted_conv2d`.
pub fn weighted_conv2d<'t>(
    x: Var<'t>,
    maps: &FeatureMaps,
    k: Var<'t>,
    alpha: Var<'t>,
    beta: Var<'t>,
    bias: Option<Var<'t>>,
    win: &Window,
) -> Result<Var<'t>> {
    const OP: &str = "weighted_conv2d";
    if win.kernel != (alpha.shape().0, beta.shape().0) {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "the window is {}×{} but the densities have {} and {} taps; they must match",
                win.kernel.0,
                win.kernel.1,
                alpha.shape().0,
                beta.shape().0
            ),
        });
    }
    let keff = weighted_kernels(k, alpha, beta, maps.channels).map_err(|e| e.within(OP))?;
    conv2d(x, maps, keff, bias, win).map_err(|e| e.within(OP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use matgrad_engine::testing::{assert_rules, real_matrix};
    use matgrad_engine::Tape;

    #[test]
    fn tied_density_layout_and_rules() {
        let t = Tape::new();
        let d = t.leaf(Value::Real(faer::mat![[0.2], [0.7]])).unwrap();
        let a = tied_density(d).unwrap().value();
        assert_eq!(
            a.as_real().unwrap(),
            &faer::mat![[0.2], [0.7], [1.0], [0.7], [0.2]]
        );
        let e = t.leaf(Value::Real(faer::Mat::zeros(0, 1))).unwrap();
        assert_eq!(tied_density(e).unwrap().shape(), (1, 1));
        assert_rules(
            "tied_density",
            |_, v| tied_density(v[0]),
            &[real_matrix(3, 1, 4)],
        );
        let bad = t.leaf(real_matrix(2, 2, 1)).unwrap();
        assert!(tied_density(bad)
            .unwrap_err()
            .to_string()
            .contains("column"));
    }

    #[test]
    fn weighted_kernels_scale_every_block() {
        let t = Tape::new();
        let k = t.leaf(real_matrix(3, 2 * 6, 1)).unwrap(); // 2 channels of 2×3 kernels
        let a = t.leaf(Value::Real(faer::mat![[2.0], [-1.0]])).unwrap();
        let b = t
            .leaf(Value::Real(faer::mat![[1.0], [3.0], [0.5]]))
            .unwrap();
        let w = weighted_kernels(k, a, b, 2).unwrap().value();
        let (kv, wv) = (k.value(), w);
        let (kr, wr) = (kv.as_real().unwrap(), wv.as_real().unwrap());
        let (av, bv) = ([2.0, -1.0], [1.0, 3.0, 0.5]);
        for o in 0..3 {
            for c in 0..2 {
                for (i, a) in av.iter().enumerate() {
                    for (j, b) in bv.iter().enumerate() {
                        let col = c * 6 + i * 3 + j;
                        assert_eq!(wr[(o, col)], kr[(o, col)] * a * b);
                    }
                }
            }
        }
        assert_rules(
            "weighted_kernels",
            |_, v| weighted_kernels(v[0], v[1], v[2], 2),
            &[
                real_matrix(3, 12, 2),
                real_matrix(2, 1, 3),
                real_matrix(3, 1, 4),
            ],
        );
    }

    #[test]
    fn tied_density_gradient_is_s_plus_st_alpha() {
        // ᾱ = (S + Sᵀ)α with S = Σ K̄_eff ∘ K per block, for α = β (closed form of the paper)
        let t = Tape::new();
        let k = t.leaf(real_matrix(2, 9, 5)).unwrap();
        let a = t
            .leaf(Value::Real(faer::mat![[0.3], [1.0], [0.6]]))
            .unwrap();
        let g = real_matrix(2, 9, 6);
        let w = weighted_kernels(k, a, a, 1).unwrap();
        let loss = w
            .mul(t.constant(g.clone()).unwrap())
            .unwrap()
            .sum(matgrad_engine::Axis::All)
            .unwrap();
        let grad = t.grad(loss, &[a]).unwrap().remove(0);
        let (kv, gv) = (k.value(), g);
        let (kr, gr) = (kv.as_real().unwrap(), gv.as_real().unwrap());
        let s = faer::Mat::from_fn(3, 3, |i, j| {
            (0..2)
                .map(|o| gr[(o, i * 3 + j)] * kr[(o, i * 3 + j)])
                .sum::<f64>()
        });
        let av = [0.3, 1.0, 0.6];
        for i in 0..3 {
            let want: f64 = (0..3).map(|j| (s[(i, j)] + s[(j, i)]) * av[j]).sum();
            assert!((grad.as_real().unwrap()[(i, 0)] - want).abs() < 1e-14);
        }
    }

    #[test]
    fn unit_density_is_plain_conv_and_errors() {
        let t = Tape::new();
        let maps = FeatureMaps {
            channels: 2,
            batch: 2,
            height: 5,
            width: 4,
        };
        let x = t.leaf(real_matrix(2, 40, 7)).unwrap();
        let k = t.leaf(real_matrix(3, 18, 8)).unwrap();
        let ones = t
            .constant(Value::Real(faer::Mat::from_fn(3, 1, |_, _| 1.0)))
            .unwrap();
        let win = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let y = weighted_conv2d(x, &maps, k, ones, ones, None, &win)
            .unwrap()
            .value();
        let z = conv2d(x, &maps, k, None, &win).unwrap().value();
        assert_eq!(y.as_real().unwrap(), z.as_real().unwrap());
        let two = t
            .constant(Value::Real(faer::Mat::from_fn(2, 1, |_, _| 1.0)))
            .unwrap();
        let e = weighted_conv2d(x, &maps, k, two, ones, None, &win)
            .unwrap_err()
            .to_string();
        assert!(e.contains("weighted_conv2d") && e.contains("taps"), "{e}");
        let e = weighted_kernels(k, ones, ones, 3).unwrap_err().to_string();
        assert!(e.contains("weighted_kernels"), "{e}");
    }
}
