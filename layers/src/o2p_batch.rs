//! `o2p_batch` and `triu_rows`: DeepO2P on a whole batch in a handful of nodes.
//!
//! forward: a stack of `batch` feature matrices `F_b` (m×d each; the input is
//! `(batch·m)×d`, the layout of [`matgrad_engine::Var::bmm_forms`]) ↦ the stack of
//! `L_b = logm(F_bᴴF_b/m + εI)` (`(batch·d)×d`), through one `gram` node (the
//! covariances, `α = 1/m`, ridge ε) and one
//! [`matgrad_spectral::matrix_function_sym_batched`] node (the logarithms). The values and derivatives are those of [`crate::o2p`] applied to each block — the same
//! Daleckii–Krein rule, exact at repeated covariance eigenvalues — with `O(1)` tape nodes
//! instead of `O(batch)`. [`triu_rows`] turns the stack into the `batch × d(d+1)/2`
//! descriptor matrix, row b being [`crate::triu_vec`]`(L_b)`, in `O(d)` nodes.
//! Derivation: docs/math/o2p.md (batched form).

use matgrad_engine::{DType, Error, Value, Var};
use matgrad_spectral::{matrix_function_sym_batched, SymFn};

use crate::error::Result;

fn check_batch(op: &'static str, rows: usize, batch: usize) -> Result<usize> {
    if batch == 0 || rows % batch != 0 {
        return Err(Error::InvalidArgument {
            op,
            message: format!(
                "batch = {batch} must be positive and divide the {rows} rows of the stack (batch blocks stacked vertically)"
            ),
        });
    }
    Ok(rows / batch)
}

/// `logm(F_bᴴF_b/m + εI)` for each of the `batch` vertically stacked m×d blocks of `f`,
/// stacked in the same way (`(batch·d)×d`).
///
/// ```
/// use matgrad_engine::{Tape, testing::real_matrix};
/// use matgrad_layers::{o2p_batch, triu_rows};
/// # fn main() -> Result<(), matgrad_layers::Error> {
/// let tape = Tape::new();
/// let f = tape.leaf(real_matrix(8 * 20, 3, 1))?;    // 8 patches of 20 features × 3
/// let logs = o2p_batch(f, 8, 1e-3)?;                // 24×3
/// let desc = triu_rows(logs, 8)?;                   // 8×6 descriptors
/// assert_eq!(desc.shape(), (8, 6));
/// # Ok(()) }
/// ```
///
/// # Errors
/// `batch` zero or not dividing the rows; `eps` not positive and finite
/// ([`Error::InvalidArgument`]); an empty block; errors of the batched logarithm (a
/// non-finite covariance, naming the block). Every error names `o2p_batch`.
pub fn o2p_batch(f: Var<'_>, batch: usize, eps: f64) -> Result<Var<'_>> {
    const OP: &str = "o2p_batch";
    let (rows, d) = f.shape();
    let m = check_batch(OP, rows, batch)?;
    if !(eps.is_finite() && eps > 0.0) {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "eps must be positive and finite (it makes each covariance positive definite), got {eps}"
            ),
        });
    }
    if m == 0 || d == 0 {
        return Err(Error::Empty {
            op: OP,
            shape: (m, d),
        });
    }
    let c = f
        .gram_blocks(batch, 1.0 / m as f64, eps)
        .map_err(|e| e.within(OP))?;
    matrix_function_sym_batched(c, d, SymFn::Log).map_err(|e| e.within(OP))
}

/// The `batch × d(d+1)/2` matrix whose row b is [`crate::triu_vec`] of the b-th d×d block
/// of a vertical stack `(batch·d)×d` (upper triangle column by column, off-diagonal
/// entries times √2).
///
/// # Errors
/// `batch` zero or not dividing the rows, or blocks that are not square
/// ([`Error::InvalidArgument`]). Errors name `triu_rows`.
pub fn triu_rows(l: Var<'_>, batch: usize) -> Result<Var<'_>> {
    const OP: &str = "triu_rows";
    let (rows, d) = l.shape();
    let p = check_batch(OP, rows, batch)?;
    if p != d {
        return Err(Error::InvalidArgument {
            op: OP,
            message: format!(
                "{rows}×{d} is not a stack of {batch} square blocks (blocks are {p}×{d})"
            ),
        });
    }
    if d == 0 {
        return l.reshape(batch, 0);
    }
    // Lᵀ reshaped (column-major) to d²×batch has entry (j + d·i, b) = L_b[i, j]; the upper
    // triangle, column by column, is one row gather of it
    let mut idx = Vec::with_capacity(d * (d + 1) / 2);
    let mut scale = Vec::with_capacity(d * (d + 1) / 2);
    for j in 0..d {
        for i in 0..=j {
            idx.push(j + d * i);
            scale.push(if i == j {
                1.0
            } else {
                std::f64::consts::SQRT_2
            });
        }
    }
    let picked = l.transpose()?.reshape(d * d, batch)?.take_rows(&idx)?;
    let scale = faer::Mat::<f64>::from_fn(idx.len(), batch, |t, _| scale[t]);
    let scale = match l.dtype() {
        DType::F64 => Value::Real(scale),
        DType::C64 => Value::Complex(Value::Real(scale).to_complex()),
    };
    picked.mul(l.tape().constant(scale)?)?.transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{o2p, triu_vec};
    use matgrad_engine::testing::{assert_rules, complex_matrix, real_matrix};
    use matgrad_engine::Tape;

    /// Forward: block by block equal to `o2p` + `triu_vec` (each tested against closed forms).
    #[test]
    fn forward_equals_the_per_block_layer() {
        for make in [real_matrix, complex_matrix] {
            let t = Tape::new();
            let (batch, m, d) = (4, 7, 3);
            let f = t.constant(make(batch * m, d, 1)).unwrap();
            let rows = triu_rows(o2p_batch(f, batch, 1e-2).unwrap(), batch).unwrap();
            let expect: Vec<Var> = (0..batch)
                .map(|b| {
                    triu_vec(o2p(f.slice(b * m..(b + 1) * m, 0..d).unwrap(), 1e-2).unwrap())
                        .unwrap()
                })
                .collect();
            let expect = Var::vcat(&expect).unwrap().value();
            assert!(rows.value().rel_diff(&expect).unwrap() < 1e-13);
        }
    }

    #[test]
    fn rules() {
        assert_rules(
            "o2p_batch",
            |_, x| o2p_batch(x[0], 3, 1e-2),
            &[real_matrix(3 * 5, 2, 2)],
        );
        assert_rules(
            "triu_rows",
            |_, x| triu_rows(x[0], 2),
            &[complex_matrix(2 * 3, 3, 3)],
        );
        // a block with tied covariance eigenvalues (orthogonal features): exact, no NaN
        let tied = Value::Real(faer::Mat::from_fn(
            8,
            2,
            |i, j| {
                if i % 4 == j {
                    2.0
                } else {
                    0.0
                }
            },
        ));
        assert_rules(
            "o2p_batch tied",
            |_, x| triu_rows(o2p_batch(x[0], 2, 1e-3)?, 2),
            &[tied],
        );
    }

    #[test]
    fn errors() {
        let t = Tape::new();
        let f = t.leaf(real_matrix(6, 2, 1)).unwrap();
        for (b, eps) in [(0, 1e-3), (4, 1e-3), (2, 0.0), (2, f64::NAN)] {
            let e = o2p_batch(f, b, eps).unwrap_err();
            assert!(e.to_string().contains("o2p_batch"), "{e}");
        }
        let e = triu_rows(f, 2).unwrap_err();
        assert!(
            e.to_string().contains("triu_rows") && e.to_string().contains("square"),
            "{e}"
        );
        // (NaN features never reach the layer: the tape refuses them at the leaf)
    }
}
