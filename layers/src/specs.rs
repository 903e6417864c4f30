//! The registration of every layer op (see [`matgrad_engine::spec`]).

use matgrad_engine::check::Tolerance;
use matgrad_engine::spec::{Case, OpSpec};
use matgrad_engine::testing::{positive_matrix, real_matrix};
use matgrad_engine::Value;

use crate::{
    avg_pool2d, cayley, col2im, conv2d, covariance_pool, crelu, diag_low_rank, expm_skew,
    gabor_bank, gaussian_derivative_bank, global_avg_pool, householder_product, im2col, log_bank,
    max_outer_pool, max_pool2d, ncut_gaussian, ncut_projector, o2p, o2p_batch, power_normalize,
    spectral_normalize, tied_density, triu_rows, triu_vec, weighted_conv2d, weighted_kernels,
    FeatureMaps, Pool, SecondOrderPooling, Window,
};

/// The feature-map shape (channels from X's rows) and window from a conv/pool spec's params.
fn conv_geometry(
    x: matgrad_engine::Var<'_>,
    p: &matgrad_engine::spec::Params,
) -> matgrad_engine::Result<(FeatureMaps, Window)> {
    Ok((
        FeatureMaps {
            channels: x.shape().0,
            batch: p.usize("batch")?,
            height: p.usize("height")?,
            width: p.usize("width")?,
        },
        Window {
            kernel: (p.usize("kh")?, p.usize("kw")?),
            stride: p.usize("stride")?,
            padding: p.usize("padding")?,
            dilation: p.usize("dilation")?,
        },
    ))
}

/// The feature-map and window parameters shared by every conv/pool spec (read back by
/// [`conv_geometry`]): kernel size `kernel`×`kernel`, the given default stride.
fn geometry(
    spec: OpSpec,
    kernel: &'static str,
    stride: &'static str,
    padding: &'static str,
) -> OpSpec {
    spec.param("batch", "1", "images B")
        .param("height", "4", "image height H")
        .param("width", "4", "image width W")
        .param("kh", kernel, "kernel (window) height")
        .param("kw", kernel, "kernel (window) width")
        .param("stride", stride, "stride")
        .param("padding", "0", padding)
        .param("dilation", "1", "dilation")
}

/// Every layer op.
pub fn specs() -> Vec<OpSpec> {
    let mut v = vec![
        OpSpec::new("o2p", "F (m×d) ↦ logm_sym(FᴴF/m + eps·I): log-Euclidean second-order pooling")
            .input("F")
            .param("eps", "1e-3", "ridge ε > 0 added to the covariance")
            .apply(|x, p| Ok(vec![o2p(x[0], p.f64("eps")?)?]))
            .cases(|| {
                vec![
                    Case::new("real 20×3", vec![real_matrix(20, 3, 70)]),
                    Case::new(
                        "orthogonal features: all covariance eigenvalues tied",
                        vec![Value::Real(faer::Mat::from_fn(4, 2, |i, j| if i == j { 2.0 } else { 0.0 }))],
                    ),
                    Case::new(
                        "rank-deficient features (d > m): tied zero eigenvalues",
                        vec![real_matrix(2, 4, 71)],
                    )
                    .param("eps", "0.1"),
                    Case::new("complex 6×2", vec![matgrad_engine::testing::complex_matrix(6, 2, 72)]),
                    Case::new("ill-conditioned ε = 1e-6", vec![real_matrix(30, 3, 73)])
                        .param("eps", "1e-6")
                        .tol(Tolerance::BALANCED),
                ]
            }),
        OpSpec::new("ncut_projector", "F (n×d, nonnegative) ↦ Π = Z(ZᵀZ)⁻¹Zᵀ with Z = D^{-1/2}F, D = diag(FFᵀ1), through a QR of Z")
            .input("F")
            .apply(|x, _| Ok(vec![ncut_projector(x[0])?]))
            .cases(|| {
                vec![
                    Case::new("positive 6×2", vec![positive_matrix(6, 2, 0.1, 1.0, 71)]),
                    Case::new("positive 9×3", vec![positive_matrix(9, 3, 0.1, 1.0, 72)]),
                    Case::new("two clusters of near-identical points", vec![Value::Real(faer::mat![
                        [1.0, 0.01],
                        [0.98, 0.02],
                        [0.02, 1.0],
                        [0.01, 0.97],
                        [0.5, 0.5]
                    ])]),
                    Case::new("n = d = 3 (Π = I)", vec![positive_matrix(3, 3, 0.2, 1.0, 73)]),
                ]
            }),
    ];
    v.extend(pooling_specs());
    v.push(ncut_gaussian_spec());
    v.extend(structured_specs());
    v
}

/// Features with every pairwise product distinct, so the max-pooling selection is locally
/// constant (finite differences see one smooth piece).
fn mixed_features() -> Value {
    Value::Real(faer::mat![
        [1.3, -0.4, 0.7],
        [-2.1, 0.9, 0.2],
        [0.5, 1.7, -1.1],
        [0.8, -1.5, -0.6],
        [-0.3, 0.1, 1.9]
    ])
}

fn pooling_specs() -> Vec<OpSpec> {
    vec![
        OpSpec::new("covariance_pool", "F (m×d) ↦ FᴴF/m + eps·I: average second-order pooling")
            .input("F")
            .param("eps", "0", "ridge ε ≥ 0")
            .apply(|x, p| Ok(vec![covariance_pool(x[0], p.f64("eps")?)?]))
            .cases(|| {
                vec![
                    Case::new("real 7×3", vec![real_matrix(7, 3, 80)]),
                    Case::new("complex 4×2", vec![matgrad_engine::testing::complex_matrix(4, 2, 81)])
                        .param("eps", "0.5"),
                    Case::new("d > m", vec![real_matrix(2, 5, 82)]),
                ]
            }),
        OpSpec::new(
            "max_outer_pool",
            "F (m×d, real) ↦ G, G_jk = max_i F_ij F_ik: max second-order pooling (subgradient of the first maximiser)",
        )
        .input("F")
        .apply(|x, _| Ok(vec![max_outer_pool(x[0])?]))
        .cases(|| {
            vec![
                Case::new("mixed signs 5×3", vec![mixed_features()]),
                Case::new("random 9×4", vec![real_matrix(9, 4, 83)]),
                Case::new("one location (G = f fᵀ)", vec![real_matrix(1, 3, 84)]),
            ]
        }),
        OpSpec::new("triu_vec", "G (d×d) ↦ the upper triangle as a row, column by column, off-diagonal × √2")
            .input("G")
            .apply(|x, _| Ok(vec![triu_vec(x[0])?]))
            .cases(|| {
                vec![
                    Case::new("real 4×4", vec![real_matrix(4, 4, 85)]),
                    Case::new("complex 3×3", vec![matgrad_engine::testing::complex_matrix(3, 3, 86)]),
                    Case::new("1×1", vec![real_matrix(1, 1, 87)]),
                ]
            }),
        OpSpec::new("o2p_batch", "F (batch·m × d, stacked blocks) ↦ the stack of logm(F_bᴴF_b/m + eps·I): O2P for a whole batch in two nodes")
            .input("F")
            .param("batch", "3", "number of stacked blocks")
            .param("eps", "1e-3", "ridge ε > 0 added to each covariance")
            .apply(|x, p| Ok(vec![o2p_batch(x[0], p.usize("batch")?, p.f64("eps")?)?]))
            .cases(|| {
                vec![
                    Case::new("real 3×(6×2)", vec![real_matrix(18, 2, 88)]).param("eps", "1e-2"),
                    Case::new(
                        "a block with tied covariance eigenvalues (orthogonal features)",
                        vec![Value::Real(faer::Mat::from_fn(8, 2, |i, j| if i % 4 == j { 2.0 } else { 0.0 }))],
                    )
                    .param("batch", "2"),
                    Case::new("complex 2×(5×2)", vec![matgrad_engine::testing::complex_matrix(10, 2, 89)])
                        .param("batch", "2"),
                ]
            }),
        OpSpec::new("triu_rows", "L (batch·d × d, stacked square blocks) ↦ batch × d(d+1)/2, row b = triu_vec(L_b)")
            .input("L")
            .param("batch", "2", "number of stacked blocks")
            .apply(|x, p| Ok(vec![triu_rows(x[0], p.usize("batch")?)?]))
            .cases(|| {
                vec![
                    Case::new("real 2×(3×3)", vec![real_matrix(6, 3, 90)]),
                    Case::new("complex 3×(2×2)", vec![matgrad_engine::testing::complex_matrix(6, 2, 91)])
                        .param("batch", "3"),
                    Case::new("1×1 blocks", vec![real_matrix(2, 1, 92)]),
                ]
            }),
        geometry(
            OpSpec::new("conv2d", "X (C × B·H·W feature maps) ⋆ K (C_out × C·kh·kw) [+ bias C_out×1]: PyTorch's conv2d on the channels × (images·pixels) layout")
                .input("X")
                .input("K"),
            "3",
            "1",
            "zero padding per side",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                Ok(vec![conv2d(x[0], &maps, x[1], None, &win)?])
            })
            .cases(|| {
                vec![
                    Case::new("2 channels, 2 images 4×4, 3×3 kernels", vec![real_matrix(2, 32, 93), real_matrix(3, 18, 94)])
                        .param("batch", "2"),
                    Case::new("stride 2, padding 1, 2×2", vec![real_matrix(1, 25, 95), real_matrix(2, 4, 96)])
                        .param("height", "5").param("width", "5").param("kh", "2").param("kw", "2")
                        .param("stride", "2").param("padding", "1"),
                    Case::new("dilation 2, complex", vec![
                        matgrad_engine::testing::complex_matrix(1, 30, 97),
                        matgrad_engine::testing::complex_matrix(2, 4, 98),
                    ])
                    .param("height", "5").param("width", "6").param("kh", "2").param("kw", "2").param("dilation", "2"),
                    // 17 images: the unrecorded K̄ sums chunks of 2 images (at most 16 chunks)
                    Case::new("17 images 3×3, 2×2 kernels", vec![real_matrix(1, 17 * 9, 99), real_matrix(2, 4, 100)])
                        .param("batch", "17").param("height", "3").param("width", "3")
                        .param("kh", "2").param("kw", "2").param("padding", "0"),
                ]
            }),
        geometry(
            OpSpec::new("im2col", "X (C × B·H·W feature maps) ↦ the (C·kh·kw) × (B·H_o·W_o) patch matrix (zeros in the padding)")
                .input("X"),
            "3",
            "1",
            "zero padding per side",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                Ok(vec![im2col(x[0], &maps, &win)?])
            })
            .cases(|| {
                vec![
                    Case::new("2 channels, 2 images 4×4, 3×3 padding 1", vec![real_matrix(2, 32, 130)])
                        .param("batch", "2").param("padding", "1"),
                    Case::new("stride 2, dilation 2, complex", vec![matgrad_engine::testing::complex_matrix(1, 36, 131)])
                        .param("height", "6").param("width", "6").param("kh", "2").param("kw", "2")
                        .param("stride", "2").param("dilation", "2"),
                ]
            }),
        geometry(
            OpSpec::new("col2im", "P ((C·kh·kw) × (B·H_o·W_o) patches) ↦ the C × (B·H·W) maps they add back to (overlaps add): the adjoint of im2col")
                .input("P")
                .param("channels", "1", "input channels C (P has C·kh·kw rows)"),
            "3",
            "1",
            "zero padding per side",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                let maps = FeatureMaps { channels: p.usize("channels")?, ..maps };
                Ok(vec![col2im(x[0], &maps, &win)?])
            })
            .cases(|| {
                vec![
                    Case::new("2 channels, 2 images 4×4, 3×3 padding 1", vec![real_matrix(18, 32, 132)])
                        .param("batch", "2").param("padding", "1").param("channels", "2"),
                    Case::new("stride 2, 2×3 windows, complex", vec![matgrad_engine::testing::complex_matrix(6, 4, 133)])
                        .param("height", "5").param("width", "6").param("kh", "2").param("kw", "3")
                        .param("stride", "2"),
                ]
            }),
        geometry(
            OpSpec::new("avg_pool2d", "X (C × B·H·W) ↦ per-channel window means (padding counts as 0)")
                .input("X"),
            "2",
            "2",
            "zero padding per side",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                Ok(vec![avg_pool2d(x[0], &maps, &win)?])
            })
            .cases(|| vec![Case::new("2 channels, 2 images 4×4", vec![real_matrix(2, 32, 99)]).param("batch", "2")]),
        geometry(
            OpSpec::new("max_pool2d", "X (C × B·H·W, real) ↦ per-channel window maxima (gradient to the first maximiser)")
                .input("X"),
            "2",
            "2",
            "padding per side (never the maximum)",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                Ok(vec![max_pool2d(x[0], &maps, &win)?])
            })
            .cases(|| vec![
                Case::new("2 channels, 2 images 4×4", vec![real_matrix(2, 32, 100)]).param("batch", "2"),
                Case::new("3×3 stride 2 padding 1", vec![real_matrix(1, 25, 101)])
                    .param("height", "5").param("width", "5").param("kh", "3").param("kw", "3").param("padding", "1"),
            ]),
        geometry(
            OpSpec::new("weighted_conv2d", "X (C × B·H·W) ⋆ (K ∘ αβᵀ) (K: C_out × C·kh·kw, α: kh×1, β: kw×1): weighted convolution")
                .input("X")
                .input("K")
                .input("alpha")
                .input("beta"),
            "3",
            "1",
            "zero padding per side",
        )
            .apply(|x, p| {
                let (maps, win) = conv_geometry(x[0], p)?;
                Ok(vec![weighted_conv2d(x[0], &maps, x[1], x[2], x[3], None, &win)?])
            })
            .cases(|| {
                vec![
                    Case::new("2 channels, 2 images 4×4, 3×3, padding 1", vec![
                        real_matrix(2, 32, 104), real_matrix(3, 18, 105), real_matrix(3, 1, 106), real_matrix(3, 1, 107),
                    ])
                    .param("batch", "2").param("padding", "1"),
                    Case::new("2×3 kernels, stride 2", vec![
                        real_matrix(1, 30, 108), real_matrix(2, 6, 109), real_matrix(2, 1, 110), real_matrix(3, 1, 111),
                    ])
                    .param("height", "5").param("width", "6").param("kh", "2").param("kw", "3").param("stride", "2"),
                ]
            }),
        OpSpec::new("weighted_kernels", "K (C_out × C·kh·kw), α (kh×1), β (kw×1) ↦ K ∘ (αβᵀ tiled over the C input channels)")
            .input("K")
            .input("alpha")
            .input("beta")
            .param("channels", "1", "input channels C")
            .apply(|x, p| Ok(vec![weighted_kernels(x[0], x[1], x[2], p.usize("channels")?)?]))
            .cases(|| vec![Case::new("2 channels of 2×3", vec![real_matrix(3, 12, 112), real_matrix(2, 1, 113), real_matrix(3, 1, 114)])
                .param("channels", "2")]),
        OpSpec::new("tied_density", "den (m×1, real) ↦ [den; 1; reverse(den)]: the symmetric density profile with centre 1")
            .input("den")
            .apply(|x, _| Ok(vec![tied_density(x[0])?]))
            .cases(|| vec![Case::new("m = 2", vec![real_matrix(2, 1, 115)])]),
        OpSpec::new("global_avg_pool", "X (C × B·H·W) ↦ B × C per-image channel means")
            .input("X")
            .param("batch", "1", "images B")
            .param("height", "4", "image height H")
            .param("width", "4", "image width W")
            .apply(|x, p| {
                let maps = FeatureMaps {
                    channels: x[0].shape().0,
                    batch: p.usize("batch")?,
                    height: p.usize("height")?,
                    width: p.usize("width")?,
                };
                Ok(vec![global_avg_pool(x[0], &maps)?])
            })
            .cases(|| vec![Case::new("3 channels, 2 images 2×3", vec![real_matrix(3, 12, 102)])
                .param("batch", "2").param("height", "2").param("width", "3")]),
        OpSpec::new(
            "gabor_bank",
            "P (m×5: log σ, θ, log λ, log γ, ψ) ↦ m Gabor kernels on the kh×kw grid, one per row",
        )
        .input("P")
        .param("kh", "5", "kernel height")
        .param("kw", "5", "kernel width")
        .apply(|x, p| Ok(vec![gabor_bank(x[0], p.usize("kh")?, p.usize("kw")?)?]))
        .cases(|| {
            vec![
                Case::new("two kernels, 3×4 grid", vec![Value::Real(faer::mat![
                    [0.3, 0.7, 1.1, -0.2, 0.4],
                    [0.1, 2.5, 0.9, 0.3, -1.2]
                ])])
                .param("kh", "3")
                .param("kw", "4"),
                Case::new("θ = 0, ψ = 0 (kernel symmetric in y)", vec![Value::Real(faer::mat![[
                    0.4, 0.0, 1.3, 0.0, 0.0
                ]])]),
            ]
        }),
        OpSpec::new(
            "log_bank",
            "P (m×1: log σ) ↦ m Laplacian-of-Gaussian kernels −(1−q)e^{−q}/(πσ⁴), q = r²/2σ², one per row",
        )
        .input("P")
        .param("kh", "5", "kernel height")
        .param("kw", "5", "kernel width")
        .apply(|x, p| Ok(vec![log_bank(x[0], p.usize("kh")?, p.usize("kw")?)?]))
        .cases(|| {
            vec![Case::new("σ = e^0.2, e^−0.1 on 3×3", vec![Value::Real(faer::mat![[0.2], [-0.1]])])
                .param("kh", "3")
                .param("kw", "3")]
        }),
        OpSpec::new(
            "gaussian_derivative_bank",
            "P (m×2: log σ, θ) ↦ m oriented Gaussian-derivative kernels ∂ⁿG/∂x′ⁿ (σ along, aspect·σ across), one per row",
        )
        .input("P")
        .param("order", "1", "derivative order n along x′")
        .param("aspect", "1", "σ across / σ along (> 0)")
        .param("kh", "5", "kernel height")
        .param("kw", "5", "kernel width")
        .apply(|x, p| {
            Ok(vec![gaussian_derivative_bank(
                x[0],
                p.usize("order")?,
                p.f64("aspect")?,
                p.usize("kh")?,
                p.usize("kw")?,
            )?])
        })
        .cases(|| {
            let p = || Value::Real(faer::mat![[0.3, 0.5], [-0.1, 2.0]]);
            vec![
                Case::new("first order, isotropic", vec![p()]),
                Case::new("second order, aspect 0.7, 3×5", vec![p()])
                    .param("order", "2")
                    .param("aspect", "0.7")
                    .param("kh", "3")
                    .param("kw", "5"),
                Case::new("third order", vec![p()]).param("order", "3"),
            ]
        }),
        OpSpec::new("crelu", "X (real, channels as rows) ↦ [ReLU(X); ReLU(−X)] (2C rows)")
            .input("X")
            .apply(|x, _| Ok(vec![crelu(x[0])?]))
            .cases(|| vec![Case::new("real 3×5", vec![real_matrix(3, 5, 103)])]),
        OpSpec::new("power_normalize", "z (real) ↦ sign(z)((|z| + eps)^h − eps^h) entrywise")
            .input("z")
            .param("h", "0.5", "exponent h > 0")
            .param("eps", "0", "offset ε ≥ 0 (ε > 0 makes the map differentiable at 0 for h < 1)")
            .apply(|x, p| Ok(vec![power_normalize(x[0], p.f64("h")?, p.f64("eps")?)?]))
            .cases(|| {
                vec![
                    Case::new("mixed signs, h = 1/2", vec![mixed_features()]),
                    Case::new("h = 3/4, eps = 1e-2, entries near 0", vec![Value::Real(faer::mat![
                        [1e-3, -2e-3, 0.4],
                        [-0.7, 5e-4, 2.5]
                    ])])
                    .param("h", "0.75")
                    .param("eps", "1e-2"),
                    Case::new("h = 2", vec![real_matrix(3, 3, 88)]).param("h", "2"),
                ]
            }),
        OpSpec::new(
            "second_order_pooling",
            "F (m×d) ↦ power_normalize(triu_vec(log(pool(F) + eps·I))): the O2P descriptor, each step optional",
        )
        .input("F")
        .param("pool", "average", "average | max")
        .param("eps", "1e-2", "ridge ε added to the pooled matrix")
        .param("log", "yes", "yes | no: apply the log-Euclidean map")
        .param("h", "0", "power-normalisation exponent (0 = none)")
        .param("h_eps", "1e-3", "power-normalisation offset")
        .apply(|x, p| {
            let pool = match p.choice("pool", &["average", "max"])? {
                "max" => Pool::Max,
                _ => Pool::Average,
            };
            let h = p.f64("h")?;
            let layer = SecondOrderPooling {
                pool,
                eps: p.f64("eps")?,
                log: p.choice("log", &["yes", "no"])? == "yes",
                power: (h != 0.0).then_some((h, p.f64("h_eps")?)),
            };
            Ok(vec![layer.describe(x[0])?])
        })
        .cases(|| {
            vec![
                Case::new("average, log, power 3/4", vec![real_matrix(12, 3, 89)]).param("h", "0.75"),
                Case::new(
                    "isotropic features: pooled matrix 2I, all eigenvalues tied",
                    vec![Value::Real(faer::mat![[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]])],
                ),
                Case::new("rank-deficient (d > m): tied eigenvalues ε", vec![real_matrix(2, 4, 90)]).param("eps", "0.1"),
                Case::new("max pooling, log", vec![mixed_features()]).param("pool", "max").param("eps", "4"),
                Case::new("average, no log", vec![real_matrix(6, 2, 91)]).param("log", "no"),
            ]
        }),
    ]
}

fn ncut_gaussian_spec() -> OpSpec {
    OpSpec::new(
        "ncut_gaussian",
        "F (n×d, real) ↦ projector onto the top-k eigenvectors of D^{-1/2}WD^{-1/2}, W_ij = exp(−‖f_i − f_j‖²/σ²)",
    )
    .input("F")
    .param("sigma", "1", "affinity bandwidth σ > 0")
    .param("k", "2", "number of segments (eigenvectors kept)")
    .param("self_loops", "yes", "yes: W_ii = 1 | no: W_ii = 0")
    .apply(|x, p| {
        let loops = p.choice("self_loops", &["yes", "no"])? == "yes";
        Ok(vec![ncut_gaussian(x[0], p.f64("sigma")?, p.usize("k")?, loops)?])
    })
    .cases(|| {
        vec![
            Case::new("random 6×3", vec![real_matrix(6, 3, 92)]).param("sigma", "1.5"),
            Case::new("random 8×2, k = 3, no self-loops", vec![real_matrix(8, 2, 93)])
                .param("k", "3")
                .param("sigma", "2")
                .param("self_loops", "no"),
            Case::new(
                "two separated clusters: kept eigenvalues tied at 1",
                vec![Value::Real(faer::mat![
                    [0.0, 0.0],
                    [0.6, 0.2],
                    [0.1, 0.5],
                    [12.0, 0.0],
                    [12.3, 0.4]
                ])],
            ),
            Case::new("k = n (Π = I)", vec![real_matrix(3, 2, 94)]).param("k", "3"),
        ]
    })
}

fn scaled(v: Value, c: f64) -> Value {
    match v {
        Value::Real(m) => Value::Real(faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
            c * m[(i, j)]
        })),
        Value::Complex(m) => Value::Complex(faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
            m[(i, j)] * c
        })),
    }
}

fn structured_specs() -> Vec<OpSpec> {
    use matgrad_engine::testing::complex_matrix;
    use matgrad_engine::DType;
    vec![
        OpSpec::new(
            "cayley",
            "B (n×n) ↦ (I − A/2)⁻¹(I + A/2), A = B − Bᴴ: orthogonal (unitary)",
        )
        .input("B")
        .apply(|x, _| Ok(vec![cayley(x[0])?]))
        .cases(|| {
            vec![
                Case::new("real 4×4", vec![real_matrix(4, 4, 100)]),
                Case::new("complex 3×3", vec![complex_matrix(3, 3, 101)]),
                Case::new(
                    "B = 0 (Q = I, the identity initialisation)",
                    vec![Value::zeros(DType::F64, 3, 3)],
                ),
                Case::new(
                    "large skew part (‖A‖ ≈ 20)",
                    vec![scaled(real_matrix(3, 3, 102), 8.0)],
                )
                .tol(Tolerance::BALANCED),
            ]
        }),
        OpSpec::new("expm_skew", "B (n×n) ↦ exp(B − Bᴴ): orthogonal (unitary)")
            .input("B")
            .apply(|x, _| Ok(vec![expm_skew(x[0])?]))
            .cases(|| {
                vec![
                    Case::new("real 4×4", vec![real_matrix(4, 4, 103)]),
                    Case::new("complex 3×3", vec![complex_matrix(3, 3, 104)]),
                    Case::new(
                        "B = 0 (all eigenvalues of A tied at 0)",
                        vec![Value::zeros(DType::F64, 3, 3)],
                    ),
                    Case::new(
                        "scaled (‖A‖ ≈ 10: scaling and squaring)",
                        vec![scaled(real_matrix(3, 3, 105), 4.0)],
                    )
                    .tol(Tolerance::BALANCED),
                ]
            }),
        OpSpec::new(
            "householder_product",
            "V (n×k) ↦ H₁⋯H_k, Hᵢ = I − 2vᵢvᵢᴴ/‖vᵢ‖²",
        )
        .input("V")
        .apply(|x, _| Ok(vec![householder_product(x[0])?]))
        .cases(|| {
            vec![
                Case::new("real 4×3", vec![real_matrix(4, 3, 106)]),
                Case::new("complex 3×2", vec![complex_matrix(3, 2, 107)]),
                Case::new("k = n = 4", vec![real_matrix(4, 4, 108)]),
                Case::new(
                    "nearly parallel reflectors",
                    vec![Value::Real(faer::mat![
                        [1.0, 1.0],
                        [0.5, 0.52],
                        [0.2, 0.19]
                    ])],
                ),
                Case::new(
                    "small columns (scale 1e-2: the derivative grows as 1/‖v‖)",
                    vec![scaled(real_matrix(3, 2, 109), 1e-2)],
                ),
            ]
        }),
        OpSpec::new("diag_low_rank", "d (n×1), U, V (n×r) ↦ diag(d) + U Vᴴ")
            .input("d")
            .input("U")
            .input("V")
            .apply(|x, _| Ok(vec![diag_low_rank(x[0], x[1], x[2])?]))
            .cases(|| {
                vec![
                    Case::new(
                        "real n = 4, r = 2",
                        vec![
                            real_matrix(4, 1, 110),
                            real_matrix(4, 2, 111),
                            real_matrix(4, 2, 112),
                        ],
                    ),
                    Case::new(
                        "complex n = 3, r = 1",
                        vec![
                            complex_matrix(3, 1, 113),
                            complex_matrix(3, 1, 114),
                            complex_matrix(3, 1, 115),
                        ],
                    ),
                ]
            }),
        OpSpec::new("spectral_normalize", "M (m×n) ↦ M/σ₁(M)")
            .input("M")
            .apply(|x, _| Ok(vec![spectral_normalize(x[0])?]))
            .cases(|| {
                vec![
                    Case::new("real 4×3", vec![real_matrix(4, 3, 116)]),
                    Case::new("complex 2×3", vec![complex_matrix(2, 3, 117)]),
                    Case::new("a row (one singular value)", vec![real_matrix(1, 4, 118)]),
                    Case::new(
                        "σ₂ = σ₃ below a simple σ₁",
                        vec![Value::Real(faer::mat![
                            [0.0, 3.0, 0.0],
                            [1.0, 0.0, 0.0],
                            [0.0, 0.0, -1.0]
                        ])],
                    ),
                ]
            }),
    ]
}
