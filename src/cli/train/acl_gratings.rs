//! `acl-gratings`: the Analytic Convolutional Layer (Cui et al., arXiv 2407.06087) on two
//! small tasks — 4-class noisy oriented gratings (procedural) and 3-class texture patches from
//! the embedded CC0 images. Network: conv (8 kernels 7×7, bias) → ReLU → global average pool →
//! linear → softmax. Kernel banks: plain learned kernels, all-Gabor (5 AKPs each), and a mixed
//! bank (4 Gabor + 4 learned). Reported: test accuracy, conv parameter count, the learned
//! Gabor orientations and wavelengths, and a picture of the learned kernels.

use std::f64::consts::PI;

use indicatif::ProgressBar;
use matgrad::engine::{Tape, Var};
use matgrad::layers::train::{loss, Init, Linear, Module, ParamSet};
use matgrad::layers::{
    conv2d, global_avg_pool, output_maps, tile_kernels, AnalyticBank, AnalyticParams, Family,
    Window,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::convnet::{grey_picture, labelled_patches, train, ImageSet, Schedule};
use super::data::TEXTURES;
use super::{Outcome, TrainOptions};

type EResult<T> = Result<T, matgrad::Error>;

const SEEDS: u64 = 3;
const SIDE: usize = 16;
const K: usize = 7;
const KERNELS: usize = 8;
/// Grating noise: standard deviation of the added Gaussian noise (signal amplitude 1).
const NOISE: f64 = 2.0;

struct Variant {
    label: &'static str,
    gabor: usize,
}

fn variants() -> Vec<Variant> {
    vec![
        Variant {
            label: "plain conv (8 learned 7×7)",
            gabor: 0,
        },
        Variant {
            label: "ACL: 8 Gabor",
            gabor: KERNELS,
        },
        Variant {
            label: "ACL mixed: 4 Gabor + 4 learned",
            gabor: KERNELS / 2,
        },
    ]
}

fn bank(v: &Variant) -> AnalyticBank {
    AnalyticBank {
        families: if v.gabor > 0 {
            vec![(Family::Gabor, v.gabor)]
        } else {
            Vec::new()
        },
        learned: KERNELS - v.gabor,
        in_channels: 1,
        kernel: (K, K),
    }
}

/// `n` gratings per class, class k at orientation kπ/4, random wavelength in [3, 6] and phase,
/// plus N(0, NOISE²) noise.
fn gratings(n: usize, rng: &mut StdRng) -> ImageSet {
    let mut set = ImageSet {
        side: SIDE,
        images: Vec::new(),
        labels: Vec::new(),
    };
    for _ in 0..n {
        for k in 0..4 {
            let theta = k as f64 * PI / 4.0;
            let lambda = rng.random_range(3.0..6.0);
            let phase = rng.random_range(0.0..2.0 * PI);
            let img = (0..SIDE * SIDE)
                .map(|t| {
                    let (x, y) = ((t % SIDE) as f64, (t / SIDE) as f64);
                    let z: f64 = StandardNormal.sample(rng);
                    (2.0 * PI * (x * theta.cos() + y * theta.sin()) / lambda + phase).cos()
                        + NOISE * z
                })
                .collect();
            set.images.push(img);
            set.labels.push(k);
        }
    }
    set
}

/// Texture patches: train from the top half of each image, test from the bottom half;
/// mean removed, scaled to unit average standard deviation.
fn textures(
    n_train: usize,
    n_test: usize,
    rng: &mut StdRng,
) -> Result<(ImageSet, ImageSet), String> {
    let [train, test] = labelled_patches(&TEXTURES, SIDE, n_train, n_test, rng)?;
    Ok((train, test))
}

struct Net {
    bank: AnalyticBank,
    ids: AnalyticParams,
    bias: matgrad::layers::train::ParamId,
    head: Linear,
}

impl Net {
    fn new(v: &Variant, classes: usize, ps: &mut ParamSet) -> EResult<Net> {
        let bank = bank(v);
        let ids = bank.init(ps, "conv")?;
        let bias = ps.add("conv.b", KERNELS, 1, Init::Zeros)?;
        let head = Linear::new(ps, "head", KERNELS, classes, Init::GlorotUniform, true)?;
        Ok(Net {
            bank,
            ids,
            bias,
            head,
        })
    }

    fn logits<'t>(
        &self,
        p: &matgrad::layers::train::Bound<'t>,
        x: Var<'t>,
        set: &ImageSet,
        b: usize,
    ) -> EResult<Var<'t>> {
        let maps = set.maps(b);
        let win = Window::new(K, K);
        let k = self.bank.kernels(p, &self.ids)?;
        let y = conv2d(x, &maps, k, Some(p.get(self.bias)), &win)?.relu()?;
        let pooled = global_avg_pool(y, &output_maps(&maps, KERNELS, &win)?)?;
        self.head.forward(p, pooled)
    }
}

struct Run {
    accuracy: f64,
    thetas: Vec<f64>,
    lambdas: Vec<f64>,
    kernels: faer::Mat<f64>,
}

fn run_one(
    v: &Variant,
    train_set: &ImageSet,
    test_set: &ImageSet,
    classes: usize,
    steps: usize,
    seed: u64,
    bar: &ProgressBar,
) -> EResult<Run> {
    let mut ps = ParamSet::new(seed);
    let net = Net::new(v, classes, &mut ps)?;
    let batch = 32;
    train(
        &mut ps,
        train_set.len(),
        Schedule {
            steps,
            batch,
            lr: 0.01,
            seed,
        },
        bar,
        |p, tape, idx| {
            let x = tape.constant(train_set.batch(idx))?;
            let labels: Vec<usize> = idx.iter().map(|&i| train_set.labels[i]).collect();
            loss::softmax_cross_entropy(net.logits(p, x, train_set, idx.len())?, &labels)
        },
    )?;
    let tape = Tape::new();
    let p = ps.bind_constant(&tape)?;
    let all: Vec<usize> = (0..test_set.len()).collect();
    let z = net.logits(
        &p,
        tape.constant(test_set.batch(&all))?,
        test_set,
        all.len(),
    )?;
    let accuracy = loss::accuracy(&z.value(), &test_set.labels);
    let table = net.bank.table(&ps, &net.ids);
    let pick = |name: &str| -> Vec<f64> {
        let mut v: Vec<f64> = table
            .iter()
            .filter(|r| r.family == "gabor")
            .filter_map(|r| r.params.iter().find(|(n, _)| *n == name).map(|x| x.1))
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let kernels = net
        .bank
        .kernels(&p, &net.ids)?
        .value()
        .as_real()
        .cloned()
        .unwrap_or_else(|| faer::Mat::zeros(0, 0));
    Ok(Run {
        accuracy,
        thetas: pick("theta"),
        lambdas: pick("lambda"),
        kernels,
    })
}

pub fn run(opts: &TrainOptions) -> Result<Outcome, String> {
    let (n_train, n_test, steps) = if opts.quick {
        (40, 25, 40)
    } else {
        (150, 100, 400)
    };
    let vs = variants();
    let bar = super::progress(opts, 2 * vs.len() as u64 * SEEDS * steps as u64)?;
    // [task][variant] runs
    let mut runs: Vec<Vec<Vec<Run>>> = (0..2)
        .map(|_| (0..vs.len()).map(|_| Vec::new()).collect())
        .collect();
    for s in 0..SEEDS {
        let seed = opts.seed + s;
        let mut rng = StdRng::seed_from_u64(seed);
        let g_train = gratings(n_train, &mut rng);
        let g_test = gratings(n_test, &mut rng);
        let (t_train, t_test) = textures(n_train, n_test, &mut rng)?;
        for (task, (tr, te, classes)) in [(&g_train, &g_test, 4), (&t_train, &t_test, 3)]
            .into_iter()
            .enumerate()
        {
            for (k, v) in vs.iter().enumerate() {
                bar.set_message(format!("seed {seed}: {}", v.label));
                runs[task][k].push(
                    run_one(v, tr, te, classes, steps, seed, &bar)
                        .map_err(|e| format!("{}: {e}", v.label))?,
                );
            }
        }
    }
    bar.finish_and_clear();
    let tasks = ["gratings", "textures"];
    let mut rows = Vec::new();
    for (task, per) in tasks.iter().zip(&runs) {
        for (v, rs) in vs.iter().zip(per) {
            let (m, sd) = super::mean_sd(&rs.iter().map(|r| r.accuracy).collect::<Vec<_>>());
            rows.push((
                format!("{task}: {}", v.label),
                vec![m, sd, bank(v).param_count() as f64],
            ));
        }
    }
    // learned orientations of the all-Gabor bank on gratings, seed opts.seed
    let gabor = &runs[0][1][0];
    let deg = |v: &[f64]| -> String {
        v.iter()
            .map(|t| format!("{:.0}°", t.to_degrees()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let lambdas = gabor
        .lambdas
        .iter()
        .map(|l| format!("{l:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    let summary = format!(
        "{n_train} training and {n_test} test images per class, {SIDE}×{SIDE}, gratings with noise sd {NOISE} (signal amplitude 1); {steps} Adam steps (lr 0.01) of 32; seeds {}–{}. Conv parameters exclude the bias (8) and the linear head (8·classes + classes). Learned Gabor orientations (all-Gabor bank, gratings, seed {}), θ mod 180°: {} (the classes are 0°, 45°, 90°, 135°); wavelengths λ: {lambdas} (the gratings': 3–6 pixels).",
        opts.seed,
        opts.seed + SEEDS - 1,
        opts.seed,
        deg(&gabor.thetas),
    );
    let mut pictures = Vec::new();
    for (k, name) in ["plain", "gabor", "mixed"].iter().enumerate() {
        let (h, w, px) = tile_kernels(&runs[0][k][0].kernels, K, K, KERNELS);
        pictures.push(grey_picture(&format!("kernels_{name}"), h, w, &px, 8));
    }
    Ok(Outcome {
        columns: vec![
            "test accuracy (mean)",
            "test accuracy (sd)",
            "conv parameters",
        ],
        rows,
        curves: Vec::new(),
        summary,
        pictures,
        histograms: Vec::new(),
    })
}
