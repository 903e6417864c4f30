//! `crelu-pairing`: the pairing analysis of CReLU (Shang, Sohn, Almeida, Lee, ICML 2016) on
//! an autoencoder of mean-removed 8×8 natural-image patches (the four embedded CC0 images).
//! Encoder: 32 filters (a linear map of the patch, i.e. an 8×8 convolution evaluated at one
//! position) → ReLU, or → CReLU (64 code units from the same 32 filters); linear decoder.
//! A small conv net as well: 16×16 patches classified by source image (brick, grass, gravel,
//! camera) with conv 5×5 (16 filters) → ReLU or CReLU → max pool 2 → conv 3×3 (16) → ReLU →
//! global average pool → linear; the pairing of its first-layer filters.
//! Reported per activation: the fraction of filters with a near-negated partner
//! (μ = min_j ⟨φ̂_i, φ̂_j⟩ < −0.8), mean μ, relative reconstruction error (autoencoder) or
//! accuracy (conv net) on held-out patches, and the μ histograms against i.i.d. Gaussian
//! filters of the same shape.

use indicatif::ProgressBar;
use matgrad::engine::{Tape, Value, Var};
use matgrad::layers::train::{loss, Bound, Init, Linear, Module, ParamId, ParamSet};
use matgrad::layers::{
    conv2d, crelu, gaussian_pairing, global_avg_pool, histogram, max_pool2d, output_maps, pairing,
    Window,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::convnet::{labelled_patches, patch, train, ImageSet, Schedule};
use super::data::{decode, CAMERA, TEXTURES};
use super::{Outcome, TrainOptions};

type EResult<T> = Result<T, matgrad::Error>;

const SEEDS: u64 = 3;
const SIDE: usize = 8;
const FILTERS: usize = 32;
/// μ below this counts as an anti-pair (the paper's histograms show mass near −1).
const PAIRED: f64 = -0.8;
const BINS: usize = 20;

#[derive(Clone, Copy, PartialEq)]
enum Act {
    Relu,
    Crelu,
}

struct Ae {
    act: Act,
    enc: Linear,
    dec: Linear,
}

impl Ae {
    fn new(act: Act, ps: &mut ParamSet) -> EResult<Ae> {
        let code = if act == Act::Crelu {
            2 * FILTERS
        } else {
            FILTERS
        };
        Ok(Ae {
            act,
            enc: Linear::new(ps, "enc", SIDE * SIDE, FILTERS, Init::GlorotUniform, true)?,
            dec: Linear::new(ps, "dec", code, SIDE * SIDE, Init::GlorotUniform, true)?,
        })
    }

    fn forward<'t>(&self, p: &Bound<'t>, x: Var<'t>) -> EResult<Var<'t>> {
        let z = self.enc.forward(p, x)?;
        let h = match self.act {
            Act::Relu => z.relu()?,
            // crelu stacks along rows (channels); here features are columns
            Act::Crelu => crelu(z.transpose()?)?.transpose()?,
        };
        self.dec.forward(p, h)
    }

    /// The encoder filters as rows (`FILTERS × 64`).
    fn filters(&self, ps: &ParamSet) -> faer::Mat<f64> {
        ps.get(self.enc.w)
            .as_real()
            .map(|w| w.transpose().to_owned())
            .unwrap_or_else(|| faer::Mat::zeros(0, 0))
    }
}

fn patches(n: usize, top: bool, rng: &mut StdRng) -> Result<Vec<Vec<f64>>, String> {
    let mut out = Vec::new();
    for (name, bytes) in TEXTURES.iter().chain(std::iter::once(&CAMERA)) {
        let img = decode(name, bytes)?;
        let half = img.height / 2;
        let rows = if top { 0..half } else { half..img.height };
        for _ in 0..n {
            out.push(patch(&img, rows.clone(), SIDE, rng));
        }
    }
    Ok(out)
}

fn matrix(p: &[Vec<f64>], scale: f64) -> Value {
    Value::Real(faer::Mat::from_fn(p.len(), SIDE * SIDE, |i, j| {
        p[i][j] / scale
    }))
}

struct Run {
    paired: f64,
    /// Held-out relative reconstruction error (autoencoder) or accuracy (conv net).
    mean_mu: f64,
    metric: f64,
    mu: Vec<f64>,
    history: Vec<f64>,
}

fn run_one(
    act: Act,
    x: &Value,
    x_test: &Value,
    steps: usize,
    seed: u64,
    bar: &ProgressBar,
) -> EResult<Run> {
    let mut ps = ParamSet::new(seed);
    let ae = Ae::new(act, &mut ps)?;
    let n = x.shape().0;
    let sched = Schedule {
        steps,
        batch: 128,
        lr: 3e-3,
        seed,
    };
    let history = train(&mut ps, n, sched, bar, |p, tape, idx| {
        let xb = tape.constant(matgrad::layers::train::select_rows(x, idx)?)?;
        loss::mse(ae.forward(p, xb)?, xb)
    })?;
    let tape = Tape::new();
    let p = ps.bind_constant(&tape)?;
    let xt = tape.constant(x_test.clone())?;
    let err = loss::mse(ae.forward(&p, xt)?, xt)?
        .value()
        .scalar_real()
        .unwrap_or(f64::NAN);
    let power = loss::mse(xt.scale(0.0)?, xt)?
        .value()
        .scalar_real()
        .unwrap_or(f64::NAN);
    let mu = pairing(&ae.filters(&ps));
    Ok(Run {
        paired: fraction(&mu),
        mean_mu: mu.iter().sum::<f64>() / mu.len() as f64,
        metric: err / power,
        mu,
        history,
    })
}

/// The conv net's patch side, first-layer kernel and filter counts.
const NET_SIDE: usize = 16;
const NET_K1: usize = 5;
const NET_F1: usize = 16;
const NET_F2: usize = 16;

struct ConvNet {
    act: Act,
    k1: ParamId,
    b1: ParamId,
    k2: ParamId,
    b2: ParamId,
    head: Linear,
}

impl ConvNet {
    fn new(act: Act, ps: &mut ParamSet) -> EResult<ConvNet> {
        let c1 = if act == Act::Crelu {
            2 * NET_F1
        } else {
            NET_F1
        };
        Ok(ConvNet {
            act,
            k1: ps.add("conv1.k", NET_F1, NET_K1 * NET_K1, Init::GlorotUniform)?,
            b1: ps.add("conv1.b", NET_F1, 1, Init::Zeros)?,
            k2: ps.add("conv2.k", NET_F2, c1 * 9, Init::GlorotUniform)?,
            b2: ps.add("conv2.b", NET_F2, 1, Init::Zeros)?,
            head: Linear::new(ps, "head", NET_F2, 4, Init::GlorotUniform, true)?,
        })
    }

    fn logits<'t>(&self, p: &Bound<'t>, x: Var<'t>, set: &ImageSet, b: usize) -> EResult<Var<'t>> {
        let maps = set.maps(b);
        let w1 = Window::new(NET_K1, NET_K1);
        let z = conv2d(x, &maps, p.get(self.k1), Some(p.get(self.b1)), &w1)?;
        let (h, c1) = match self.act {
            Act::Relu => (z.relu()?, NET_F1),
            Act::Crelu => (crelu(z)?, 2 * NET_F1),
        };
        let m1 = output_maps(&maps, c1, &w1)?;
        let pool = Window {
            stride: 2,
            ..Window::new(2, 2)
        };
        let h = max_pool2d(h, &m1, &pool)?;
        let m2 = output_maps(&m1, c1, &pool)?;
        let w2 = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let h = conv2d(h, &m2, p.get(self.k2), Some(p.get(self.b2)), &w2)?.relu()?;
        let g = global_avg_pool(h, &output_maps(&m2, NET_F2, &w2)?)?;
        self.head.forward(p, g)
    }
}

fn run_net(
    act: Act,
    [train_set, test_set]: &[ImageSet; 2],
    steps: usize,
    seed: u64,
    bar: &ProgressBar,
) -> EResult<Run> {
    let mut ps = ParamSet::new(seed);
    let net = ConvNet::new(act, &mut ps)?;
    let sched = Schedule {
        steps,
        batch: 32,
        lr: 3e-3,
        seed,
    };
    let history = train(&mut ps, train_set.len(), sched, bar, |p, tape, idx| {
        let x = tape.constant(train_set.batch(idx))?;
        let labels: Vec<usize> = idx.iter().map(|&i| train_set.labels[i]).collect();
        loss::softmax_cross_entropy(net.logits(p, x, train_set, idx.len())?, &labels)
    })?;
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
    let filters = ps
        .get(net.k1)
        .as_real()
        .cloned()
        .unwrap_or_else(|| faer::Mat::zeros(0, 0));
    let mu = pairing(&filters);
    Ok(Run {
        paired: fraction(&mu),
        mean_mu: mu.iter().sum::<f64>() / mu.len().max(1) as f64,
        metric: accuracy,
        mu,
        history,
    })
}

fn fraction(mu: &[f64]) -> f64 {
    mu.iter().filter(|&&m| m < PAIRED).count() as f64 / mu.len().max(1) as f64
}

pub fn run(opts: &TrainOptions) -> Result<Outcome, String> {
    let (n_train, n_test, steps) = if opts.quick {
        (200, 100, 150)
    } else {
        (2000, 500, 3000)
    };
    let (net_train, net_test, net_steps) = if opts.quick {
        (40, 20, 40)
    } else {
        (500, 200, 1500)
    };
    let bar = super::progress(opts, 2 * SEEDS * (steps + net_steps) as u64)?;
    let mut runs: [Vec<Run>; 4] = Default::default();
    let mut random = [Vec::new(), Vec::new()];
    for s in 0..SEEDS {
        let seed = opts.seed + s;
        let mut rng = StdRng::seed_from_u64(seed);
        let tr = patches(n_train, true, &mut rng)?;
        let te = patches(n_test, false, &mut rng)?;
        let all: Vec<f64> = tr.iter().flatten().copied().collect();
        let sd = (all.iter().map(|v| v * v).sum::<f64>() / all.len() as f64).sqrt();
        let (x, x_test) = (matrix(&tr, sd), matrix(&te, sd));
        let images = [TEXTURES[0], TEXTURES[1], TEXTURES[2], CAMERA];
        let sets = labelled_patches(&images, NET_SIDE, net_train, net_test, &mut rng)?;
        for (k, (act, label)) in [(Act::Relu, "ReLU"), (Act::Crelu, "CReLU")]
            .iter()
            .enumerate()
        {
            bar.set_message(format!("seed {seed}: {label} autoencoder"));
            runs[k].push(
                run_one(*act, &x, &x_test, steps, seed, &bar)
                    .map_err(|e| format!("{label} autoencoder: {e}"))?,
            );
            bar.set_message(format!("seed {seed}: {label} conv net"));
            runs[2 + k].push(
                run_net(*act, &sets, net_steps, seed, &bar)
                    .map_err(|e| format!("{label} conv net: {e}"))?,
            );
        }
        random[0].push(gaussian_pairing(FILTERS, SIDE * SIDE, seed ^ 0x6a55));
        random[1].push(gaussian_pairing(NET_F1, NET_K1 * NET_K1, seed ^ 0x6a56));
    }
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let mut histograms = Vec::new();
    let labels = [
        "ReLU autoencoder",
        "CReLU autoencoder",
        "ReLU conv net (conv1)",
        "CReLU conv net (conv1)",
    ];
    for (k, (label, rs)) in labels.iter().zip(&runs).enumerate() {
        let (p, p_sd) = super::mean_sd(&rs.iter().map(|r| r.paired).collect::<Vec<_>>());
        let m = super::mean_sd(&rs.iter().map(|r| r.mean_mu).collect::<Vec<_>>()).0;
        let e = super::mean_sd(&rs.iter().map(|r| r.metric).collect::<Vec<_>>()).0;
        let (err, acc) = if k < 2 { (e, f64::NAN) } else { (f64::NAN, e) };
        rows.push((label.to_string(), vec![p, p_sd, m, err, acc]));
        let mu: Vec<f64> = rs.iter().flat_map(|r| r.mu.iter().copied()).collect();
        histograms.push((label.to_string(), histogram(&mu, BINS)));
    }
    for (label, rnd) in [
        "i.i.d. Gaussian filters (64-dim)",
        "i.i.d. Gaussian filters (25-dim)",
    ]
    .iter()
    .zip(&random)
    {
        let (p, p_sd) = super::mean_sd(&rnd.iter().map(|m| fraction(m)).collect::<Vec<_>>());
        let m = super::mean_sd(
            &rnd.iter()
                .map(|m| m.iter().sum::<f64>() / m.len().max(1) as f64)
                .collect::<Vec<_>>(),
        )
        .0;
        rows.push((label.to_string(), vec![p, p_sd, m, f64::NAN, f64::NAN]));
        let mu: Vec<f64> = rnd.iter().flatten().copied().collect();
        histograms.push((label.to_string(), histogram(&mu, BINS)));
    }
    let pct = |r: usize| 100.0 * rows[r].1[0];
    let summary = format!(
        "Autoencoder: {FILTERS} encoder filters (a dense map of the 8×8 patch, i.e. an 8×8 convolution at one position) on 4·{n_train} training patches of {SIDE}×{SIDE} (mean removed, unit average variance; brick, grass, gravel, camera; top halves), held-out patches from the bottom halves; {steps} Adam steps (lr 3e-3) of 128. Conv net: {NET_SIDE}×{NET_SIDE} patches labelled by source image (4·{net_train} train, 4·{net_test} test), conv {NET_K1}×{NET_K1}·{NET_F1} → ReLU/CReLU → max pool 2 → conv 3×3·{NET_F2} → ReLU → global average pool → linear; {net_steps} Adam steps (lr 3e-3) of 32; μ of the first layer's {NET_F1} filters. Seeds {}–{}. Anti-paired filters (μ < {PAIRED}): autoencoder ReLU {:.0} %, CReLU {:.0} %; conv net ReLU {:.0} %, CReLU {:.0} %; random {:.0} % / {:.0} %.",
        opts.seed,
        opts.seed + SEEDS - 1,
        pct(0),
        pct(1),
        pct(2),
        pct(3),
        pct(4),
        pct(5),
    );
    Ok(Outcome {
        columns: vec![
            "fraction μ < −0.8 (mean)",
            "fraction μ < −0.8 (sd)",
            "mean μ",
            "test reconstruction error / power",
            "test accuracy",
        ],
        rows,
        curves: runs
            .iter()
            .zip([
                "ReLU autoencoder",
                "CReLU autoencoder",
                "ReLU conv net",
                "CReLU conv net",
            ])
            .map(|(rs, l)| (format!("{l} (seed {})", opts.seed), rs[0].history.clone()))
            .collect(),
        summary,
        pictures: Vec::new(),
        histograms,
    })
}
