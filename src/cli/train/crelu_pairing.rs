//! `crelu-pairing`: the pairing analysis of CReLU (Shang, Sohn, Almeida, Lee, ICML 2016) on
//! an autoencoder of mean-removed 8×8 natural-image patches (the four embedded CC0 images).
//! Encoder: 32 filters (a linear map of the patch, i.e. an 8×8 convolution evaluated at one
//! position) → ReLU, or → CReLU (64 code units from the same 32 filters); linear decoder.
//! Reported per activation: the fraction of filters with a near-negated partner
//! (μ = min_j ⟨φ̂_i, φ̂_j⟩ < −0.8), mean μ, relative reconstruction error on held-out patches,
//! and the μ histograms against i.i.d. Gaussian filters of the same shape.

use indicatif::ProgressBar;
use matgrad::engine::{Tape, Value, Var};
use matgrad::layers::train::{loss, Bound, Init, Linear, Module, ParamSet};
use matgrad::layers::{crelu, gaussian_pairing, histogram, pairing};
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::convnet::{patch, train, Schedule};
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
    mean_mu: f64,
    rel_err: f64,
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
        rel_err: err / power,
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
    let bar = super::progress(opts, 2 * SEEDS * steps as u64)?;
    let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
    let mut random = Vec::new();
    for s in 0..SEEDS {
        let seed = opts.seed + s;
        let mut rng = StdRng::seed_from_u64(seed);
        let tr = patches(n_train, true, &mut rng)?;
        let te = patches(n_test, false, &mut rng)?;
        let all: Vec<f64> = tr.iter().flatten().copied().collect();
        let sd = (all.iter().map(|v| v * v).sum::<f64>() / all.len() as f64).sqrt();
        let (x, x_test) = (matrix(&tr, sd), matrix(&te, sd));
        for (k, (act, label)) in [(Act::Relu, "ReLU"), (Act::Crelu, "CReLU")]
            .iter()
            .enumerate()
        {
            bar.set_message(format!("seed {seed}: {label}"));
            runs[k].push(
                run_one(*act, &x, &x_test, steps, seed, &bar)
                    .map_err(|e| format!("{label}: {e}"))?,
            );
        }
        random.push(gaussian_pairing(FILTERS, SIDE * SIDE, seed ^ 0x6a55));
    }
    bar.finish_and_clear();
    let mut rows = Vec::new();
    let mut histograms = Vec::new();
    for (label, rs) in ["ReLU autoencoder", "CReLU autoencoder"].iter().zip(&runs) {
        let (p, p_sd) = super::mean_sd(&rs.iter().map(|r| r.paired).collect::<Vec<_>>());
        let m = super::mean_sd(&rs.iter().map(|r| r.mean_mu).collect::<Vec<_>>()).0;
        let e = super::mean_sd(&rs.iter().map(|r| r.rel_err).collect::<Vec<_>>()).0;
        rows.push((label.to_string(), vec![p, p_sd, m, e]));
        let mu: Vec<f64> = rs.iter().flat_map(|r| r.mu.iter().copied()).collect();
        histograms.push((label.to_string(), histogram(&mu, BINS)));
    }
    let (p, p_sd) = super::mean_sd(&random.iter().map(|m| fraction(m)).collect::<Vec<_>>());
    let m = super::mean_sd(
        &random
            .iter()
            .map(|m| m.iter().sum::<f64>() / m.len() as f64)
            .collect::<Vec<_>>(),
    )
    .0;
    rows.push((
        "i.i.d. Gaussian filters".to_string(),
        vec![p, p_sd, m, f64::NAN],
    ));
    let mu: Vec<f64> = random.iter().flatten().copied().collect();
    histograms.push(("i.i.d. Gaussian filters".to_string(), histogram(&mu, BINS)));
    let summary = format!(
        "{FILTERS} encoder filters on {}·{n_train} training patches of {SIDE}×{SIDE} (mean removed, unit average variance; brick, grass, gravel, camera; top halves), held-out patches from the bottom halves; {steps} Adam steps (lr 3e-3) of 128; seeds {}–{}. Anti-paired filters (μ < {PAIRED}): ReLU {:.0} %, CReLU {:.0} %, random {:.0} %. The encoder is a dense map of the 8×8 patch — an 8×8 convolution at one position; a deeper conv net was not run.",
        4,
        opts.seed,
        opts.seed + SEEDS - 1,
        100.0 * rows[0].1[0],
        100.0 * rows[1].1[0],
        100.0 * rows[2].1[0],
    );
    Ok(Outcome {
        columns: vec![
            "fraction μ < −0.8 (mean)",
            "fraction μ < −0.8 (sd)",
            "mean μ",
            "test reconstruction error / power",
        ],
        rows,
        curves: runs
            .iter()
            .zip(["ReLU", "CReLU"])
            .map(|(rs, l)| (format!("{l} (seed {})", opts.seed), rs[0].history.clone()))
            .collect(),
        summary,
        pictures: Vec::new(),
        histograms,
    })
}
