//! Minibatches: a seeded shuffle of row indices per epoch, and row selection.

use matgrad_engine::{Error, Result, Value};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// Shuffled minibatches of `0..n` (the last may be smaller), reproducible from the seed.
#[derive(Clone, Debug)]
pub struct Batches {
    n: usize,
    size: usize,
    rng: StdRng,
}

impl Batches {
    /// Batches of `size` over `n` samples.
    ///
    /// # Errors
    /// `size == 0`.
    pub fn new(n: usize, size: usize, seed: u64) -> Result<Batches> {
        if size == 0 {
            return Err(Error::InvalidArgument {
                op: "Batches::new",
                message: "the batch size must be at least 1".into(),
            });
        }
        Ok(Batches {
            n,
            size,
            rng: StdRng::seed_from_u64(seed),
        })
    }
    /// The batches of the next epoch.
    pub fn epoch(&mut self) -> Vec<Vec<usize>> {
        let mut idx: Vec<usize> = (0..self.n).collect();
        idx.shuffle(&mut self.rng);
        idx.chunks(self.size).map(<[usize]>::to_vec).collect()
    }
}

/// The rows `idx` of `x`, in that order.
///
/// # Errors
/// An index out of range.
pub fn select_rows(x: &Value, idx: &[usize]) -> Result<Value> {
    let (m, n) = x.shape();
    if let Some(&bad) = idx.iter().find(|&&i| i >= m) {
        return Err(Error::InvalidArgument {
            op: "select_rows",
            message: format!("row {bad} of a {m}×{n} matrix"),
        });
    }
    Ok(match x {
        Value::Real(a) => Value::Real(faer::Mat::from_fn(idx.len(), n, |i, j| a[(idx[i], j)])),
        Value::Complex(a) => {
            Value::Complex(faer::Mat::from_fn(idx.len(), n, |i, j| a[(idx[i], j)]))
        }
    })
}
