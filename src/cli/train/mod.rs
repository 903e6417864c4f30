//! `matgrad train NAME`: the experiments, one per seed paper, on the embedded data.
//!
//! Conventions every experiment shares: `--seed` (all randomness), `--quick` (≤ 30 s, what
//! CI runs), `--json` (one JSON object on stdout), `--out DIR` (tables and SVG plots,
//! written atomically), a progress bar on stderr. `matgrad train --list` lists them.

use std::path::Path;

pub mod acl_gratings;
pub mod convnet;
pub mod crelu_pairing;
pub mod data;
pub mod ncut_mosaic;
pub mod o2p_texture;
pub mod residual_structured;
pub mod wconv_denoise;

/// What an experiment returns: a table (rows of named numbers) and a verdict line.
pub struct Outcome {
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows: a label and one number per column.
    pub rows: Vec<(String, Vec<f64>)>,
    /// Training curves: a label and the batch loss at each step (plotted by `--out`).
    pub curves: Vec<(String, Vec<f64>)>,
    /// One honest sentence about what the numbers show.
    pub summary: String,
    /// Pictures written by `--out` as `NAME_<picture>.png`.
    pub pictures: Vec<Picture>,
    /// Histograms over [−1, 1] (equal bins), drawn together as `NAME_hist.svg` by `--out`.
    pub histograms: Vec<(String, Vec<usize>)>,
}

/// An RGB picture (8 bits per channel, row-major).
pub struct Picture {
    /// File-name suffix.
    pub name: String,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `3 · width · height` bytes.
    pub rgb: Vec<u8>,
}

/// Encodes a picture as PNG at `path`.
fn write_png(path: &Path, pic: &Picture) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let w = u32::try_from(pic.width).map_err(|e| e.to_string())?;
    let h = u32::try_from(pic.height).map_err(|e| e.to_string())?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer
        .write_image_data(&pic.rgb)
        .map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// Writes the training curves as an SVG line plot (log-scale loss).
fn plot_curves(path: &Path, title: &str, curves: &[(String, Vec<f64>)]) -> Result<(), String> {
    use plotters::prelude::*;
    let steps = curves
        .iter()
        .map(|(_, c)| c.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = ys
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-6)
        .log10()
        .floor();
    let hi = ys
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1e-6)
        .log10()
        .ceil()
        .max(lo + 1.0);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..steps as f64, lo..hi)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("log10 batch loss")
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, (label, c)) in curves.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let pts: Vec<(f64, f64)> = c
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(i, v)| (i as f64, v.log10()))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Mean and sample standard deviation (0 for one value).
/// Fractions per bin over [−1, 1], one step line per histogram.
fn plot_histograms(path: &Path, title: &str, hists: &[(String, Vec<usize>)]) -> Result<(), String> {
    use plotters::prelude::*;
    let frac: Vec<Vec<f64>> = hists
        .iter()
        .map(|(_, h)| {
            let n = h.iter().sum::<usize>().max(1) as f64;
            h.iter().map(|&c| c as f64 / n).collect()
        })
        .collect();
    let top = frac.iter().flatten().copied().fold(0.0, f64::max).max(1e-3) * 1.1;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-1f64..1f64, 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("μ = min_j ⟨φ̂_i, φ̂_j⟩")
        .y_desc("fraction of filters")
        .draw()
        .map_err(|e| e.to_string())?;
    for (k, ((label, _), f)) in hists.iter().zip(&frac).enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let w = 2.0 / f.len().max(1) as f64;
        let pts: Vec<(f64, f64)> = f
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| [(-1.0 + i as f64 * w, v), (-1.0 + (i + 1) as f64 * w, v)])
            .collect();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The experiments' progress bar over `total` steps (hidden without `progress`).
pub fn progress(opts: &TrainOptions, total: u64) -> Result<indicatif::ProgressBar, String> {
    if !opts.progress {
        return Ok(indicatif::ProgressBar::hidden());
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps")
            .map_err(|e| e.to_string())?,
    );
    Ok(bar)
}

pub fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 {
        x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (m, var.sqrt())
}

/// Options shared by every experiment.
pub struct TrainOptions {
    /// Seed for all randomness.
    pub seed: u64,
    /// Small configuration (≤ 30 s).
    pub quick: bool,
    /// Show a progress bar.
    pub progress: bool,
}

/// A registered experiment.
pub struct Experiment {
    /// Name on the command line.
    pub name: &'static str,
    /// The paper it reproduces, in small.
    pub paper: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Runs it.
    pub run: fn(&TrainOptions) -> Result<Outcome, String>,
}

/// Every registered experiment.
pub fn experiments() -> Vec<Experiment> {
    vec![Experiment {
        name: "o2p-texture",
        paper: "Ionescu, Vantzos, Sminchisescu, Matrix backpropagation (ICCV 2015): DeepO2P",
        description: "texture classification (brick / grass / gravel patches): learned linear features → log-covariance pooling (logm_sym, trained end to end through its adjoint) → softmax, against the same network with average pooling",
        run: o2p_texture::run,
    }, Experiment {
        name: "ncut-mosaic",
        paper: "Ionescu, Vantzos, Sminchisescu, Matrix backpropagation (ICCV 2015): normalized cuts layer",
        description: "segmentation of random three-texture mosaics: per-point features learned so that the normalized-cuts projector (ncut_gaussian, through eigh_projector's adjoint) matches the ground-truth segment projector; against k-means and normalized cuts on raw descriptors",
        run: ncut_mosaic::run,
    }, Experiment {
        name: "residual-structured",
        paper: "Residual-structured transforms W = S(θ) + R (PAPERS.md §5)",
        description: "a deep tanh network on a synthetic teacher: dense weights vs Cayley / exp(skew) / Householder orthogonal + low-rank residual, diagonal + low-rank, spectrally normalised; Jacobian conditioning, gradient flow, sensitivity, test MSE, ‖R‖/‖S‖",
        run: residual_structured::run,
    }, Experiment {
        name: "acl-gratings",
        paper: "Cui et al., Analytic Convolutional Layer (arXiv 2407.06087)",
        description: "noisy oriented gratings (4 classes) and texture patches (3 classes): a conv → ReLU → global pool → linear net with plain learned kernels vs all-Gabor analytic kernels (5 parameters each) vs a mixed bank; accuracy, parameter counts, learned θ/λ, a picture of the kernels",
        run: acl_gratings::run,
    }, Experiment {
        name: "crelu-pairing",
        paper: "Shang, Sohn, Almeida, Lee, CReLU (ICML 2016): the pairing analysis",
        description: "an autoencoder of 8×8 natural-image patches with ReLU vs CReLU encoders: fraction of filters with a near-negated partner (μ < −0.8), mean μ, reconstruction error, μ histograms against i.i.d. Gaussian filters",
        run: crelu_pairing::run,
    }, Experiment {
        name: "wconv-denoise",
        paper: "Cammarasana & Patanè, weighted convolution with optimal density functions (arXiv 2505.24527)",
        description: "a residual CNN denoiser of natural-image patches: standard conv vs weighted conv with a density chosen by DIRECT-L vs learned by gradient, each at its own tuned learning rate; test MSE/PSNR, density, run-time overhead",
        run: wconv_denoise::run,
    }]
}

fn table(o: &Outcome) -> String {
    let mut s = format!(
        "| run | {} |\n|---|{}\n",
        o.columns.join(" | "),
        "---|".repeat(o.columns.len())
    );
    for (label, vals) in &o.rows {
        // NaN marks "not applicable" (e.g. ‖R‖/‖S‖ without a residual)
        let cells: Vec<String> = vals
            .iter()
            .map(|v| {
                if v.is_nan() {
                    "—".to_string()
                } else {
                    format!("{v:.4}")
                }
            })
            .collect();
        s += &format!("| {label} | {} |\n", cells.join(" | "));
    }
    s
}

/// Runs `matgrad train`; returns the exit code.
pub fn run(
    name: Option<&str>,
    list: bool,
    opts: &TrainOptions,
    as_json: bool,
    out: Option<&Path>,
) -> i32 {
    let exps = experiments();
    if list || name.is_none() {
        for e in &exps {
            println!("{:<14} {}\n{:<14} ({})", e.name, e.description, "", e.paper);
        }
        return if list { 0 } else { 2 };
    }
    let name = name.unwrap_or_default();
    let Some(e) = exps.iter().find(|e| e.name == name) else {
        let names: Vec<&str> = exps.iter().map(|e| e.name).collect();
        eprintln!(
            "matgrad train: unknown experiment {name:?}; registered: {}",
            names.join(", ")
        );
        return 2;
    };
    let outcome = match (e.run)(opts) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("matgrad train {name}: error: {msg}");
            return 1;
        }
    };
    let md = format!(
        "# {name} (seed {}, {})\n\n{}\n{}\n",
        opts.seed,
        if opts.quick { "quick" } else { "full" },
        table(&outcome),
        outcome.summary
    );
    if as_json {
        let rows: Vec<_> = outcome
            .rows
            .iter()
            .map(|(l, v)| {
                let mut m = serde_json::Map::new();
                m.insert("run".into(), serde_json::json!(l));
                for (c, x) in outcome.columns.iter().zip(v) {
                    m.insert((*c).into(), serde_json::json!(x));
                }
                serde_json::Value::Object(m)
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "experiment": name, "seed": opts.seed, "quick": opts.quick, "rows": rows, "summary": outcome.summary })
        );
    } else {
        print!("{md}");
    }
    if let Some(dir) = out {
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let path = dir.join(format!("{name}.md"));
            let tmp = dir.join(format!(".{name}.md.matgrad-tmp"));
            std::fs::write(&tmp, &md)?;
            std::fs::rename(&tmp, &path)
        };
        if let Err(err) = write() {
            eprintln!("matgrad train {name}: error: {}: {err}", dir.display());
            return 1;
        }
        if !outcome.curves.is_empty() {
            let svg = dir.join(format!("{name}_loss.svg"));
            let tmp = dir.join(format!(".{name}_loss.svg.matgrad-tmp"));
            let title = format!("{name}: training loss (seed {})", opts.seed);
            if let Err(err) = plot_curves(&tmp, &title, &outcome.curves)
                .and_then(|_| std::fs::rename(&tmp, &svg).map_err(|e| e.to_string()))
            {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("matgrad train {name}: error: {}: {err}", svg.display());
                return 1;
            }
        }
        if !outcome.histograms.is_empty() {
            let svg = dir.join(format!("{name}_hist.svg"));
            let tmp = dir.join(format!(".{name}_hist.svg.matgrad-tmp"));
            let title = format!("{name}: histograms (seed {})", opts.seed);
            if let Err(err) = plot_histograms(&tmp, &title, &outcome.histograms)
                .and_then(|_| std::fs::rename(&tmp, &svg).map_err(|e| e.to_string()))
            {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("matgrad train {name}: error: {}: {err}", svg.display());
                return 1;
            }
        }
        for pic in &outcome.pictures {
            let path = dir.join(format!("{name}_{}.png", pic.name));
            let tmp = dir.join(format!(".{name}_{}.png.matgrad-tmp", pic.name));
            if let Err(err) = write_png(&tmp, pic)
                .and_then(|_| std::fs::rename(&tmp, &path).map_err(|e| e.to_string()))
            {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("matgrad train {name}: error: {}: {err}", path.display());
                return 1;
            }
        }
    }
    0
}
