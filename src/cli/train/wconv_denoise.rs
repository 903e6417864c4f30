//! `wconv-denoise`: weighted convolution (Cammarasana & Patanè, arXiv 2505.24527) in a small
//! residual CNN denoiser of 12×12 natural-image patches (σ = 0.1 Gaussian noise on [0, 1]
//! intensities). `x̂ = y − f(y)`, `f` = three 3×3 conv layers (8, 8, 1 channels, ReLU between).
//! Variants, each at its own learning rate tuned by DIRECT-L on a validation set with the same
//! budget of trainings:
//! - standard convolution;
//! - weighted convolution `K ∘ ααᵀ`, `α = [den, 1, den]` shared by the three layers, `den`
//!   chosen by DIRECT-L on the validation loss (each evaluation trains the network), as the
//!   paper does — jointly with its learning rate (a 2-D search over den and log10 lr);
//! - the same with `den` learned by gradient jointly with the kernels (from den = 1, i.e.
//!   starting as standard convolution) — the engine gives ∂L/∂den exactly.
//!
//! Reported: test MSE and PSNR, the density, and the training time per step relative to
//! standard convolution.

use std::time::Instant;

use indicatif::ProgressBar;
use matgrad::engine::{Tape, Value, Var};
use matgrad::layers::train::{loss, Bound, Init, ParamId, ParamSet};
use matgrad::layers::{
    conv2d, direct_l, tied_density, weighted_conv2d, DirectOptions, FeatureMaps, Window,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

use super::convnet::{train, Schedule};
use super::data::{decode, Image, CAMERA, TEXTURES};
use super::{Outcome, TrainOptions};

type EResult<T> = Result<T, matgrad::Error>;

const SEEDS: u64 = 3;
const SIDE: usize = 12;
const WIDTH: usize = 8;
const SIGMA: f64 = 0.1;
/// The density's search box for DIRECT-L.
const DEN_BOX: (f64, f64) = (0.05, 2.0);
/// The learning rate's search box (log10, Adam) for DIRECT-L, for every variant.
const LOG_LR_BOX: (f64, f64) = (-3.0, -1.5);

#[derive(Clone, Copy)]
enum Density {
    None,
    Fixed(f64),
    Learned,
}

struct Net {
    w: [ParamId; 3],
    b: [ParamId; 3],
    den: Option<ParamId>,
    density: Density,
}

impl Net {
    fn new(ps: &mut ParamSet, density: Density) -> EResult<Net> {
        let shapes = [(WIDTH, 9), (WIDTH, WIDTH * 9), (1, WIDTH * 9)];
        let mut w = Vec::new();
        let mut b = Vec::new();
        for (i, (o, f)) in shapes.iter().enumerate() {
            w.push(ps.add(
                &format!("conv{i}.w"),
                *o,
                *f,
                Init::Normal((2.0 / *f as f64).sqrt()),
            )?);
            b.push(ps.add(&format!("conv{i}.b"), *o, 1, Init::Zeros)?);
        }
        let den = match density {
            Density::Learned => Some(ps.add("den", 1, 1, Init::Constant(1.0))?),
            _ => None,
        };
        Ok(Net {
            w: [w[0], w[1], w[2]],
            b: [b[0], b[1], b[2]],
            den,
            density,
        })
    }

    fn denoise<'t>(
        &self,
        p: &Bound<'t>,
        tape: &'t Tape,
        y: Var<'t>,
        batch: usize,
    ) -> EResult<Var<'t>> {
        let win = Window {
            padding: 1,
            ..Window::new(3, 3)
        };
        let alpha = match self.density {
            Density::None => None,
            Density::Fixed(d) => Some(tied_density(tape.constant(Value::Real(faer::mat![[d]]))?)?),
            Density::Learned => Some(tied_density(p.get(self.den.expect("learned density")))?),
        };
        let mut h = y;
        for i in 0..3 {
            let maps = FeatureMaps {
                channels: h.shape().0,
                batch,
                height: SIDE,
                width: SIDE,
            };
            let (k, b) = (p.get(self.w[i]), Some(p.get(self.b[i])));
            h = match alpha {
                None => conv2d(h, &maps, k, b, &win)?,
                Some(a) => weighted_conv2d(h, &maps, k, a, a, b, &win)?,
            };
            if i < 2 {
                h = h.relu()?;
            }
        }
        y.sub(h)
    }
}

struct Data {
    clean: Vec<Vec<f64>>,
    noisy: Vec<Vec<f64>>,
}

impl Data {
    fn rows(v: &[Vec<f64>], idx: &[usize]) -> Value {
        let p = SIDE * SIDE;
        Value::Real(faer::Mat::from_fn(1, idx.len() * p, |_, j| {
            v[idx[j / p]][j % p]
        }))
    }
}

fn patches(imgs: &[Image], n: usize, top: bool, rng: &mut StdRng) -> Data {
    let mut clean = Vec::new();
    for img in imgs {
        let half = img.height / 2;
        let rows = if top {
            0..half - SIDE
        } else {
            half..img.height - SIDE
        };
        for _ in 0..n {
            let (r0, c0) = (
                rng.random_range(rows.clone()),
                rng.random_range(0..img.width - SIDE),
            );
            clean.push(
                (0..SIDE * SIDE)
                    .map(|t| img.at(r0 + t / SIDE, c0 + t % SIDE))
                    .collect::<Vec<_>>(),
            );
        }
    }
    let noisy = clean
        .iter()
        .map(|c| {
            c.iter()
                .map(|v| {
                    let z: f64 = StandardNormal.sample(rng);
                    v + SIGMA * z
                })
                .collect()
        })
        .collect();
    Data { clean, noisy }
}

fn mse(net: &Net, ps: &ParamSet, d: &Data) -> EResult<f64> {
    let tape = Tape::new();
    let p = ps.bind_constant(&tape)?;
    let idx: Vec<usize> = (0..d.clean.len()).collect();
    let y = tape.constant(Data::rows(&d.noisy, &idx))?;
    let x = tape.constant(Data::rows(&d.clean, &idx))?;
    Ok(loss::mse(net.denoise(&p, &tape, y, idx.len())?, x)?
        .value()
        .scalar_real()
        .unwrap_or(f64::NAN))
}

struct Fit {
    val: f64,
    test: f64,
    den: f64,
    seconds_per_step: f64,
    lr: f64,
}

fn fit(
    density: Density,
    lr: f64,
    sets: &[Data; 3],
    steps: usize,
    seed: u64,
    bar: &ProgressBar,
) -> EResult<Fit> {
    let mut ps = ParamSet::new(seed);
    let net = Net::new(&mut ps, density)?;
    let tr = &sets[0];
    let start = Instant::now();
    train(
        &mut ps,
        tr.clean.len(),
        Schedule {
            steps,
            batch: 16,
            lr,
            seed,
        },
        bar,
        |p, tape, idx| {
            let y = tape.constant(Data::rows(&tr.noisy, idx))?;
            let x = tape.constant(Data::rows(&tr.clean, idx))?;
            loss::mse(net.denoise(p, tape, y, idx.len())?, x)
        },
    )?;
    let seconds_per_step = start.elapsed().as_secs_f64() / steps.max(1) as f64;
    let den = match (density, net.den) {
        (Density::Fixed(d), _) => d,
        (Density::Learned, Some(id)) => ps.get(id).scalar_real().unwrap_or(f64::NAN),
        _ => 1.0,
    };
    Ok(Fit {
        val: mse(&net, &ps, &sets[1])?,
        test: mse(&net, &ps, &sets[2])?,
        den,
        seconds_per_step,
        lr,
    })
}

fn best(fits: Vec<Fit>) -> Fit {
    fits.into_iter()
        .min_by(|a, b| a.val.total_cmp(&b.val))
        .expect("a non-empty grid")
}

pub fn run(opts: &TrainOptions) -> Result<Outcome, String> {
    let (n_train, n_val, steps, evals) = if opts.quick {
        (16, 8, 12, 3)
    } else {
        (100, 40, 300, 12)
    };
    let imgs: Vec<Image> = TEXTURES
        .iter()
        .chain(std::iter::once(&CAMERA))
        .map(|(n, b)| decode(n, b))
        .collect::<Result<_, _>>()?;
    // DIRECT-L stops after the iteration that passes `evals` (2-D: at most evals + 4)
    let per_seed = 3 * (evals + 4);
    let bar = super::progress(opts, SEEDS * (per_seed * steps) as u64)?;
    let labels = [
        "standard conv (tuned lr)",
        "weighted conv, density by DIRECT-L (tuned lr)",
        "weighted conv, density by gradient (tuned lr)",
    ];
    let mut fits: [Vec<Fit>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut direct_evals = Vec::new();
    for s in 0..SEEDS {
        let seed = opts.seed + s;
        let mut rng = StdRng::seed_from_u64(seed);
        let sets = [
            patches(&imgs, n_train, true, &mut rng),
            patches(&imgs, n_val, true, &mut rng),
            patches(&imgs, n_val, false, &mut rng),
        ];
        // every variant gets the same tuning: DIRECT-L on the validation loss, over log10 lr
        // (standard, gradient density) or over (den, log10 lr) (DIRECT-L density), with the
        // same budget of trainings
        let tune = |density: fn(&[f64]) -> Density, with_den: bool| -> EResult<(Fit, usize)> {
            let mut tried = Vec::new();
            let (lo, hi) = if with_den {
                (vec![DEN_BOX.0, LOG_LR_BOX.0], vec![DEN_BOX.1, LOG_LR_BOX.1])
            } else {
                (vec![LOG_LR_BOX.0], vec![LOG_LR_BOX.1])
            };
            let r = direct_l(
                |d| {
                    let lr = 10f64.powf(d[d.len() - 1]);
                    let f = fit(density(d), lr, &sets, steps, seed, &bar)?;
                    let v = f.val;
                    tried.push(f);
                    Ok(v)
                },
                &lo,
                &hi,
                &DirectOptions {
                    max_evals: Some(evals),
                    ..DirectOptions::default()
                },
            )?;
            Ok((best(tried), r.evals))
        };
        let mut run = || -> EResult<[Fit; 3]> {
            bar.set_message(format!("seed {seed}: standard"));
            let (standard, n0) = tune(|_| Density::None, false)?;
            bar.set_message(format!("seed {seed}: DIRECT-L density"));
            let (by_direct, n1) = tune(|d| Density::Fixed(d[0]), true)?;
            bar.set_message(format!("seed {seed}: gradient density"));
            let (by_grad, n2) = tune(|_| Density::Learned, false)?;
            direct_evals.extend([n0 as f64, n1 as f64, n2 as f64]);
            Ok([standard, by_direct, by_grad])
        };
        let [a, b, c] = run().map_err(|e| e.to_string())?;
        fits[0].push(a);
        fits[1].push(b);
        fits[2].push(c);
    }
    bar.finish_and_clear();
    let base_time = super::mean_sd(
        &fits[0]
            .iter()
            .map(|f| f.seconds_per_step)
            .collect::<Vec<_>>(),
    )
    .0;
    let mut rows = Vec::new();
    for (label, fs) in labels.iter().zip(&fits) {
        let col = |g: fn(&Fit) -> f64| fs.iter().map(g).collect::<Vec<_>>();
        let (m, sd) = super::mean_sd(&col(|f| f.test));
        let psnr = super::mean_sd(&col(|f| 10.0 * (1.0 / f.test).log10())).0;
        rows.push((
            label.to_string(),
            vec![
                m,
                sd,
                psnr,
                super::mean_sd(&col(|f| f.den)).0,
                super::mean_sd(&col(|f| f.lr.log10())).0,
                super::mean_sd(&col(|f| f.seconds_per_step)).0 / base_time,
            ],
        ));
    }
    let noisy_psnr = 10.0 * (1.0 / (SIGMA * SIGMA)).log10();
    let gain = |k: usize| 100.0 * (1.0 - rows[k].1[0] / rows[0].1[0]);
    let (d0, d1, l0, l1) = (DEN_BOX.0, DEN_BOX.1, LOG_LR_BOX.0, LOG_LR_BOX.1);
    let used = super::mean_sd(&direct_evals).0;
    let (first, last) = (opts.seed, opts.seed + SEEDS - 1);
    let (g1, g2) = (gain(1), gain(2));
    let summary = format!(
        "{n_train} training, {n_val} validation and {n_val} test patches per image ({SIDE}×{SIDE}, four CC0 images, test from the bottom halves), noise σ = {SIGMA} (noisy input PSNR {noisy_psnr:.1} dB); {steps} Adam steps of 16 per training; every variant tuned by DIRECT-L on the validation loss with a budget of {evals} trainings (it used {used:.1} on average) — over log10 lr ∈ [{l0}, {l1}] for standard convolution and the gradient density, over (den, log10 lr) ∈ [{d0}, {d1}] × [{l0}, {l1}] for the DIRECT-L density; seeds {first}–{last}. Test MSE relative to standard convolution: DIRECT-L density {g1:.1} % lower, gradient density {g2:.1} % lower (negative: higher). Densities and learning rates are means over seeds (lr as log10).",
    );
    Ok(Outcome {
        columns: vec![
            "test MSE (mean)",
            "test MSE (sd)",
            "test PSNR dB",
            "den",
            "log10 lr",
            "time per step / standard",
        ],
        rows,
        curves: Vec::new(),
        summary,
        pictures: Vec::new(),
        histograms: Vec::new(),
    })
}
