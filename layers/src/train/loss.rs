//! Losses, built from engine ops (so their gradients, and second derivatives, come from the
//! engine's rules).

use matgrad_engine::{Axis, Error, Result, Value, Var};

/// Mean softmax cross-entropy of logits `z` (n×C, one row per sample) against class
/// labels: `mean_i (log Σ_c e^{z_ic} − z_{i,yᵢ})`, with the row maximum subtracted first
/// (a constant shift, exact for the value and the gradient) so that nothing overflows.
///
/// # Errors
/// [`Error::InvalidArgument`] when the labels do not match the rows or exceed the classes.
pub fn softmax_cross_entropy<'t>(z: Var<'t>, labels: &[usize]) -> Result<Var<'t>> {
    let (n, c) = z.shape();
    if labels.len() != n || n == 0 {
        return Err(Error::InvalidArgument {
            op: "softmax_cross_entropy",
            message: format!(
                "{n} rows of logits but {} labels (need one per row, at least one)",
                labels.len()
            ),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&l| l >= c) {
        return Err(Error::InvalidArgument {
            op: "softmax_cross_entropy",
            message: format!("label {bad} is not a class of {c} logits"),
        });
    }
    let zv = z.value();
    let zr = zv.as_real().ok_or(Error::UnsupportedDType {
        op: "softmax_cross_entropy",
        dtype: zv.dtype(),
        hint: "logits are real",
    })?;
    let tape = z.tape();
    let max = tape.constant(Value::Real(faer::Mat::from_fn(n, 1, |i, _| {
        (0..c).map(|j| zr[(i, j)]).fold(f64::NEG_INFINITY, f64::max)
    })))?;
    let shifted = z.sub(max.broadcast_to(n, c)?)?;
    let lse = shifted.exp()?.sum(Axis::Cols)?.log()?;
    let onehot = tape.constant(Value::Real(faer::Mat::from_fn(n, c, |i, j| {
        f64::from(u8::from(labels[i] == j))
    })))?;
    let picked = shifted.mul(onehot)?.sum(Axis::Cols)?;
    lse.sub(picked)?.mean(Axis::All)
}

/// Mean squared error `mean((p − t)²)` over every entry.
///
/// # Errors
/// Shape or dtype mismatch.
pub fn mse<'t>(p: Var<'t>, t: Var<'t>) -> Result<Var<'t>> {
    let d = p.sub(t)?;
    let (m, n) = d.shape();
    if m * n == 0 {
        return Err(Error::Empty {
            op: "mse",
            shape: (m, n),
        });
    }
    d.abs()?.powf(2.0)?.mean(Axis::All)
}

/// `‖P − P*‖²_F`, the distance between two projectors (or any two matrices).
///
/// # Errors
/// Shape or dtype mismatch.
pub fn projector_distance<'t>(p: Var<'t>, target: Var<'t>) -> Result<Var<'t>> {
    let d = p.sub(target)?;
    d.dot_real(d)
}

/// The fraction of rows whose largest logit is at the label.
pub fn accuracy(z: &Value, labels: &[usize]) -> f64 {
    let Some(zr) = z.as_real() else { return 0.0 };
    if labels.is_empty() {
        return 0.0;
    }
    let correct = labels
        .iter()
        .enumerate()
        .filter(|(i, &l)| {
            let pred = (0..zr.ncols())
                .max_by(|&a, &b| zr[(*i, a)].total_cmp(&zr[(*i, b)]))
                .unwrap_or(0);
            pred == l
        })
        .count();
    correct as f64 / labels.len() as f64
}
