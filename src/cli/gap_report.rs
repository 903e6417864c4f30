//! The picture behind `matgrad check --out DIR`: relative error of the gradient of
//! `⟨Ḡ, log A⟩` as the gap between two eigenvalues closes, for matgrad's `logm_sym`
//! (Daleckii–Krein) and for the eigh-composition ("K-matrix") route used by DeepO2P-style
//! code and by PyTorch/JAX autodiff through `eigh`, computed in the same run.
//!
//! A = Q diag(3, 3 + g, 5) Qᵀ for a fixed random orthogonal Q, and A = diag(3, 3 + g, 5)
//! (exact eigenvalues: an exact tie at g = 0), for g from 1e-1 to 1e-15 and 0. The reference is the closed form `Q (P ∘ Qᵀ sym(Ḡ) Q) Qᵀ` with `Pᵢⱼ = log[λᵢ, λⱼ]`
//! evaluated at the exact eigenvalues with a power series written here for the purpose —
//! independent of any eigensolver and of the library's own divided differences. The K-matrix route is
//! `U (diag(λ̄) + K ∘ skew(UᵀŪ)) Uᵀ` with `Ū = 2 sym(Ḡ) U log Λ`, `λ̄ = diag(UᵀḠU)/λ`,
//! `Kᵢⱼ = 1/(λⱼ − λᵢ)` and infinities set to 0, as in the widely copied code.

use faer::{Mat, Side};
use matgrad::engine::testing::{orthogonal_from_seed, real_matrix};
use matgrad::engine::{Tape, Value};
use matgrad::spectral::logm_sym;
use plotters::prelude::*;

/// One row of the sweep.
pub struct GapRow {
    /// The gap g.
    pub gap: f64,
    /// true: A is diagonal (exact eigenvalues, an exact tie at g = 0); false: rotated by Q.
    pub diagonal: bool,
    /// matgrad's relative error.
    pub matgrad: f64,
    /// The K-matrix route's relative error (NaN when it produced NaN).
    pub kmatrix: f64,
}

/// `log[a, b]` for the reference, computed independently of the library: the series
/// `log(1 + t)/t = Σₖ (−t)ᵏ/(k + 1)`, `t = (b − a)/a`, when |t| < 1/2 (80 terms: error below
/// 2⁻⁸⁰), and the plain quotient otherwise (no cancellation there for these points).
fn log_divided_difference(a: f64, b: f64) -> f64 {
    if a == b {
        return 1.0 / a;
    }
    let t = (b - a) / a;
    if t.abs() < 0.5 {
        let mut sum = 0.0;
        let mut term = 1.0;
        for k in 0..80 {
            sum += term / (k + 1) as f64;
            term *= -t;
        }
        sum / a
    } else {
        (b.ln() - a.ln()) / (b - a)
    }
}

fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let d = Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[(i, j)] - b[(i, j)]);
    d.norm_l2() / b.norm_l2()
}

fn sym(g: &Mat<f64>) -> Mat<f64> {
    Mat::from_fn(g.nrows(), g.ncols(), |i, j| 0.5 * (g[(i, j)] + g[(j, i)]))
}

/// Runs the sweep.
///
/// # Errors
/// A failure of the library on one of the inputs (reported, not expected).
pub fn sweep() -> Result<Vec<GapRow>, String> {
    let q = orthogonal_from_seed(3, 2024);
    let gbar = real_matrix(3, 3, 2025);
    let gb = gbar.as_real().expect("real").clone();
    let mut gaps: Vec<f64> = (1..=15).map(|k| 10f64.powi(-k)).collect();
    gaps.push(0.0);
    let mut rows = Vec::new();
    let eye = Mat::<f64>::identity(3, 3);
    for diagonal in [false, true] {
        let q = if diagonal { eye.clone() } else { q.clone() };
        for &g in &gaps {
            let lam = [3.0, 3.0 + g, 5.0];
            let d = Mat::from_fn(3, 3, |i, j| if i == j { lam[i] } else { 0.0 });
            let a = &q * &d * q.transpose();
            let a = sym(&a);
            // reference: closed form at the exact spectrum
            let p = Mat::from_fn(3, 3, |i, j| log_divided_difference(lam[i], lam[j]));
            let gt = q.transpose() * sym(&gb) * &q;
            let inner = Mat::from_fn(3, 3, |i, j| p[(i, j)] * gt[(i, j)]);
            let reference = &q * inner * q.transpose();
            // matgrad
            let tape = Tape::new();
            let x = tape
                .leaf(Value::Real(a.clone()))
                .map_err(|e| e.to_string())?;
            let y = logm_sym(x).map_err(|e| e.to_string())?;
            let mg = tape
                .vjp(&[y], std::slice::from_ref(&gbar), &[x])
                .map_err(|e| e.to_string())?;
            let mg = mg[0].as_real().expect("real").clone();
            // K-matrix route
            let e = a
                .self_adjoint_eigen(Side::Lower)
                .map_err(|e| format!("{e:?}"))?;
            let (u, s) = (e.U().to_owned(), e.S().column_vector().to_owned());
            let l: Vec<f64> = (0..3).map(|i| s[i]).collect();
            let ul = Mat::from_fn(3, 3, |i, j| u[(i, j)] * l[j].ln());
            let ubar = sym(&gb) * &ul * 2.0;
            let utgu = u.transpose() * &gb * &u;
            let x = u.transpose() * &ubar;
            let w = Mat::from_fn(3, 3, |i, j| {
                if i == j {
                    utgu[(i, i)] / l[i]
                } else {
                    let k = 1.0 / (l[j] - l[i]);
                    let k = if k.is_finite() { k } else { 0.0 };
                    k * 0.5 * (x[(i, j)] - x[(j, i)])
                }
            });
            let km = &u * w * u.transpose();
            rows.push(GapRow {
                gap: g,
                diagonal,
                matgrad: rel(&mg, &reference),
                kmatrix: rel(&km, &reference),
            });
        }
    }
    Ok(rows)
}

/// Writes the SVG plot of the sweep to `path`.
///
/// # Errors
/// Drawing or I/O failures, as text.
pub fn plot(rows: &[GapRow], path: &std::path::Path) -> Result<(), String> {
    let floor = 1e-17f64;
    let to_y = |e: f64| {
        if e.is_finite() {
            e.max(floor).log10()
        } else {
            1.0
        }
    };
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "gradient of ⟨Ḡ, log A⟩, A = Q diag(3, 3+g, 5) Qᵀ",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-16.5f64..0.0f64, -17.0f64..1.5f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("log10 gap g (g = 0 drawn at −16)")
        .y_desc("log10 relative error")
        .draw()
        .map_err(|e| e.to_string())?;
    let x_of = |g: f64| if g > 0.0 { g.log10() } else { -16.0 };
    let series = [
        ("matgrad logm_sym, rotated A", BLUE, true, false),
        ("matgrad logm_sym, diagonal A", CYAN, true, true),
        (
            "eigh composition (K-matrix), rotated A",
            MAGENTA,
            false,
            false,
        ),
        ("eigh composition (K-matrix), diagonal A", RED, false, true),
    ];
    for (label, color, is_mg, diag) in series {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.diagonal == diag)
            .map(|r| (x_of(r.gap), to_y(if is_mg { r.matgrad } else { r.kmatrix })))
            .collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
