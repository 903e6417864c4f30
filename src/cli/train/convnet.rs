//! Shared pieces of the convolution experiments: single-channel image sets on the
//! channels × (images·pixels) layout, patches from the embedded images, a minibatch trainer.

use indicatif::ProgressBar;
use matgrad::engine::{Tape, Value, Var};
use matgrad::layers::train::{Adam, Batches, Bound, Optimizer, ParamSet};
use matgrad::layers::FeatureMaps;
use rand::rngs::StdRng;
use rand::Rng;

use super::data::Image;

type EResult<T> = Result<T, matgrad::Error>;

/// Single-channel `side×side` images with labels (or targets).
#[derive(Clone)]
pub struct ImageSet {
    pub side: usize,
    pub images: Vec<Vec<f64>>,
    pub labels: Vec<usize>,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn maps(&self, batch: usize) -> FeatureMaps {
        FeatureMaps {
            channels: 1,
            batch,
            height: self.side,
            width: self.side,
        }
    }

    /// The `1 × (B·side²)` matrix of the images `idx` (`pick` chooses clean or noisy pixels).
    pub fn batch(&self, idx: &[usize]) -> Value {
        let p = self.side * self.side;
        Value::Real(faer::Mat::from_fn(1, idx.len() * p, |_, j| {
            self.images[idx[j / p]][j % p]
        }))
    }
}

/// A random `side×side` patch of `img` from rows in `rows`, mean removed.
pub fn patch(img: &Image, rows: std::ops::Range<usize>, side: usize, rng: &mut StdRng) -> Vec<f64> {
    let r0 = rng.random_range(rows.start..rows.end - side);
    let c0 = rng.random_range(0..img.width - side);
    let mut v: Vec<f64> = (0..side * side)
        .map(|t| img.at(r0 + t / side, c0 + t % side))
        .collect();
    let m = v.iter().sum::<f64>() / v.len() as f64;
    v.iter_mut().for_each(|x| *x -= m);
    v
}

/// Patches labelled by source image (label = position in `images`): `n_train` from the top
/// half of each image, `n_test` from the bottom half; mean removed, scaled by the training
/// set's RMS. Returns `[train, test]`.
pub fn labelled_patches(
    images: &[(&str, &[u8])],
    side: usize,
    n_train: usize,
    n_test: usize,
    rng: &mut StdRng,
) -> Result<[ImageSet; 2], String> {
    let mut sets = [Vec::new(), Vec::new()];
    for (label, (name, bytes)) in images.iter().enumerate() {
        let img = super::data::decode(name, bytes)?;
        let half = img.height / 2;
        for _ in 0..n_train {
            sets[0].push((patch(&img, 0..half, side, rng), label));
        }
        for _ in 0..n_test {
            sets[1].push((patch(&img, half..img.height, side, rng), label));
        }
    }
    let all: Vec<f64> = sets[0]
        .iter()
        .flat_map(|(p, _)| p.iter().copied())
        .collect();
    let sd = (all.iter().map(|v| v * v).sum::<f64>() / all.len().max(1) as f64).sqrt();
    let make = |v: &Vec<(Vec<f64>, usize)>| ImageSet {
        side,
        images: v
            .iter()
            .map(|(p, _)| p.iter().map(|x| x / sd).collect())
            .collect(),
        labels: v.iter().map(|(_, l)| *l).collect(),
    };
    Ok([make(&sets[0]), make(&sets[1])])
}

/// Adam steps of minibatches, seeded.
#[derive(Clone, Copy)]
pub struct Schedule {
    pub steps: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Trains `ps` with Adam for the schedule's minibatches from `n` examples;
/// `loss(p, tape, idx)` builds the minibatch loss. Returns the loss history.
pub fn train(
    ps: &mut ParamSet,
    n: usize,
    Schedule {
        steps,
        batch,
        lr,
        seed,
    }: Schedule,
    bar: &ProgressBar,
    loss: impl for<'t> Fn(&Bound<'t>, &'t Tape, &[usize]) -> EResult<Var<'t>>,
) -> EResult<Vec<f64>> {
    let mut opt = Adam::new(lr);
    let mut batches = Batches::new(n, batch, seed ^ 0xba7c)?;
    let mut queue: Vec<Vec<usize>> = Vec::new();
    let mut history = Vec::with_capacity(steps);
    for _ in 0..steps {
        if queue.is_empty() {
            queue = batches.epoch();
            queue.reverse();
        }
        let idx = queue.pop().unwrap_or_default();
        let tape = Tape::new();
        let p = ps.bind(&tape)?;
        let l = loss(&p, &tape, &idx)?;
        history.push(l.value().scalar_real().unwrap_or(f64::NAN));
        let g = p.grad(l)?;
        opt.step(ps, &g)?;
        bar.inc(1);
    }
    Ok(history)
}

/// Grey values in [0, 1] (row-major `h×w`) scaled up `zoom` times as an RGB picture.
pub fn grey_picture(name: &str, h: usize, w: usize, px: &[f64], zoom: usize) -> super::Picture {
    let (ph, pw) = (h * zoom, w * zoom);
    let mut rgb = Vec::with_capacity(3 * ph * pw);
    for r in 0..ph {
        for c in 0..pw {
            let v = (px[(r / zoom) * w + c / zoom].clamp(0.0, 1.0) * 255.0).round() as u8;
            rgb.extend([v, v, v]);
        }
    }
    super::Picture {
        name: name.to_string(),
        width: pw,
        height: ph,
        rgb,
    }
}
