//! DIRECT-L: the locally biased DIRECT global optimiser (Gablonsky & Kelley, "A locally-biased
//! form of the DIRECT algorithm", J. Global Optim. 21, 2001) for a bounded box, derivative
//! free.
//!
//! **Algorithm.** The box is scaled to the unit cube; every hyperrectangle is stored by its
//! centre, its function value and, per dimension, how many times it has been trisected (side
//! `3^{−l_i}`). Its *level* is `min_i l_i` (its longest side is `3^{−level}`). Each iteration
//! 1. takes, from every level, the one rectangle with the lowest value (the locally biased
//!    choice: DIRECT proper takes every tie too);
//! 2. keeps those that are potentially optimal: some rate constant `K > 0` makes them the
//!    lowest lower bound `f_j − K·d_j` (`d_j = 3^{−level}`) with sufficient decrease
//!    `f_j − K d_j ≤ f_min − ε|f_min|`;
//! 3. trisects each kept rectangle along all its longest sides: samples `c ± δ e_i`
//!    (`δ = d_j/3`), and splits first along the side whose better sample `w_i = min f(c ± δe_i)`
//!    is lowest, so the best new point keeps the largest rectangle.
//!
//! Stops after an iteration once the evaluations exceed `max_evals` (so the last iteration
//! may pass it, as in the reference), after `max_iter` iterations, when the best rectangle's
//! volume measure `3^{−L₀}` is ≤ `vol_tol` or its side `3^{−level}` is ≤ `len_tol` (Gablonsky's
//! measures, see [`DirectStop`]), or when `(f_min − f_global)/|f_global| ≤ f_min_rtol` for a
//! known `f_global`.
//!
//! **Reference.** This is a port of the order of operations of Gablonsky's Fortran DIRECT
//! (v2.04, as translated in NLopt's `direct/` and compiled into `scipy.optimize.direct` with
//! `locally_biased=True`), including its tie rules (sorted lists keep insertion order among
//! equal values; the `w` ordering is stable), so that with the same budget it visits the same
//! points. scipy's copy differs from Gablonsky's rule in one branch (see [`Selection`]); both
//! are reproduced: tests/data/golden_direct.{py,json} holds scipy's results on nine standard
//! test functions (14 cases, both rules) and `tests/golden_direct.rs` requires the same
//! evaluation and iteration counts, stopping rule and best point (1e-12 of the box).
//! Infeasible points (the Fortran code's hidden constraints) are not supported: a non-finite
//! objective value is an error.

use matgrad_engine::Error;

use crate::error::Result;

/// The deepest trisection level [`direct_l`] tracks (`3^{−700}` is already below f64's
/// range; the reference's own limit, `max_iter + 1000`, is smaller unless `max_iter` is huge).
const MAX_DEPTH: usize = 100_000;

/// Options of [`direct_l`] (defaults are `scipy.optimize.direct`'s, with Gablonsky's selection
/// rule).
#[derive(Clone, Debug, PartialEq)]
pub struct DirectOptions {
    /// Sufficient-decrease ε of the potential-optimality test (1e-4).
    pub eps: f64,
    /// Evaluation budget; `None` is 1000 × dimension. Checked after each iteration.
    pub max_evals: Option<usize>,
    /// Iteration limit (1000).
    pub max_iter: usize,
    /// Stop when the best rectangle's volume measure is at most this (1e-16).
    pub vol_tol: f64,
    /// Stop when the best rectangle's side measure is at most this (1e-6).
    pub len_tol: f64,
    /// A known global minimum value, for the `f_min_rtol` stop (`None`: unknown).
    pub f_min: Option<f64>,
    /// Relative tolerance to `f_min` (1e-4).
    pub f_min_rtol: f64,
    /// Which potential-optimality rule selects rectangles ([`Selection::Gablonsky`]).
    pub selection: Selection,
}

/// The rectangle-selection rule.
///
/// Gablonsky's code rejects a candidate when no rate constant `K` satisfies both its
/// bounds (`K_low > K_high`: a smaller rectangle undercuts it more steeply than a larger one
/// lets it); NLopt keeps that rule. scipy's copy of the code commented out the log message in
/// that branch, leaving `if (logfile) goto reject;` — so `scipy.optimize.direct`, which runs
/// without a log file, keeps such candidates (it divides more rectangles per iteration and
/// follows a different path; with `_direct(..., disp=True)` it follows Gablonsky's rule).
/// Both are offered so that either reference can be reproduced exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Gablonsky & Kelley's DIRECT-L (and NLopt's `GN_ORIG_DIRECT_L`).
    Gablonsky,
    /// `scipy.optimize.direct(locally_biased=True)` as shipped (no log file).
    ScipyQuiet,
}

impl Default for DirectOptions {
    fn default() -> DirectOptions {
        DirectOptions {
            eps: 1e-4,
            max_evals: None,
            max_iter: 1000,
            vol_tol: 1e-16,
            len_tol: 1e-6,
            f_min: None,
            f_min_rtol: 1e-4,
            selection: Selection::Gablonsky,
        }
    }
}

/// Why [`direct_l`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectStop {
    /// The evaluation budget was exceeded.
    MaxEvals,
    /// The iteration limit was reached.
    MaxIter,
    /// `3^{−L₀}` of the best rectangle ≤ `vol_tol` (L₀: Gablonsky's level of the original
    /// DIRECT, `k·n + n − p` or `k·n + p` for `k` the fewest trisections and `p` the dimensions
    /// trisected as often as the first).
    VolTol,
    /// The best rectangle's longest side `3^{−level}` ≤ `len_tol`.
    LenTol,
    /// Within `f_min_rtol` of the known minimum.
    FMin,
    /// The maximum depth of trisections was reached.
    MaxDepth,
}

/// The outcome of [`direct_l`].
#[derive(Clone, Debug, PartialEq)]
pub struct DirectResult {
    /// The best point found.
    pub x: Vec<f64>,
    /// Its value.
    pub fun: f64,
    /// Objective evaluations.
    pub evals: usize,
    /// Iterations (counted as the reference counts them: the initial division is iteration 1).
    pub iterations: usize,
    /// The stopping rule that fired.
    pub stop: DirectStop,
}

/// Rectangles stored as the reference stores them: index 0 is "none"; `next` links each
/// level's list, sorted by value.
struct Store {
    n: usize,
    c: Vec<f64>,
    len: Vec<usize>,
    f: Vec<f64>,
    next: Vec<usize>,
}

impl Store {
    fn lengths(&self, p: usize) -> &[usize] {
        &self.len[p * self.n..(p + 1) * self.n]
    }
    /// Level of DIRECT-L: the fewest trisections.
    fn level(&self, p: usize) -> usize {
        *self.lengths(p).iter().min().expect("n ≥ 1")
    }
    /// The original DIRECT's level (Gablonsky's `jones = 0` branch), used by the volume stop.
    fn level0(&self, p: usize) -> usize {
        let l = self.lengths(p);
        let help = l[0];
        let k = self.level(p);
        let same = 1 + l[1..].iter().filter(|&&v| v == help).count();
        if k == help {
            k * self.n + self.n - same
        } else {
            k * self.n + same
        }
    }
    fn push(&mut self, from: usize) -> usize {
        let p = self.f.len();
        self.c
            .extend_from_within(from * self.n..(from + 1) * self.n);
        self.len
            .extend_from_within(from * self.n..(from + 1) * self.n);
        self.f.push(0.0);
        self.next.push(0);
        p
    }
    /// Inserts `ins` into the sorted list after `start` (whose value is ≤ f[ins]): before the
    /// first strictly larger value.
    fn insert_after(&mut self, mut start: usize, ins: usize) {
        loop {
            let nx = self.next[start];
            if nx == 0 {
                self.next[start] = ins;
                self.next[ins] = 0;
                return;
            }
            if self.f[ins] < self.f[nx] {
                self.next[start] = ins;
                self.next[ins] = nx;
                return;
            }
            start = nx;
        }
    }
}

struct Levels {
    anchor: Vec<usize>,
}

impl Levels {
    fn head(&mut self, level: usize) -> &mut usize {
        if self.anchor.len() <= level {
            self.anchor.resize(level + 1, 0);
        }
        &mut self.anchor[level]
    }
}

/// Minimises `f` over the box `[lower, upper]` with DIRECT-L. `f` receives a point of the box
/// and returns its value (or an error, which stops the search and is returned).
///
/// ```
/// use matgrad_layers::{direct_l, DirectOptions};
/// # fn main() -> Result<(), matgrad_layers::Error> {
/// let r = direct_l(
///     |x| Ok((x[0] - 0.3).powi(2) + (x[1] + 0.7).powi(2)),
///     &[-1.0, -1.0],
///     &[1.0, 1.0],
///     &DirectOptions { max_evals: Some(200), ..DirectOptions::default() },
/// )?;
/// assert!((r.x[0] - 0.3).abs() < 1e-2 && (r.x[1] + 0.7).abs() < 1e-2);
/// # Ok(()) }
/// ```
///
/// # Errors
/// Empty or mismatched bounds, a bound not finite or `lower ≥ upper`, options out of range
/// (ε < 0, tolerances outside [0, 1]), a non-finite objective value (naming the point), or the
/// objective's own error.
pub fn direct_l(
    mut f: impl FnMut(&[f64]) -> Result<f64>,
    lower: &[f64],
    upper: &[f64],
    opts: &DirectOptions,
) -> Result<DirectResult> {
    const OP: &str = "direct_l";
    let bad = |message: String| Error::InvalidArgument { op: OP, message };
    let n = lower.len();
    if n == 0 || upper.len() != n {
        return Err(bad(format!(
            "the bounds have {} lower and {} upper entries; give one of each per dimension (at least one)",
            lower.len(),
            upper.len()
        )));
    }
    for (i, (&l, &u)) in lower.iter().zip(upper).enumerate() {
        if !(l.is_finite() && u.is_finite() && l < u) {
            return Err(bad(format!(
                "dimension {i} has bounds [{l}, {u}]; DIRECT needs finite lower < upper"
            )));
        }
    }
    if opts.eps.is_nan() || opts.eps < 0.0 {
        return Err(bad(format!("eps = {} must be ≥ 0", opts.eps)));
    }
    for (name, v) in [
        ("vol_tol", opts.vol_tol),
        ("len_tol", opts.len_tol),
        ("f_min_rtol", opts.f_min_rtol),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(bad(format!("{name} = {v} must lie in [0, 1]")));
        }
    }
    let max_evals = opts.max_evals.unwrap_or(1000usize.saturating_mul(n));
    // the reference's depth limit is max_iter + 1000; capped so that a huge max_iter cannot
    // overflow or allocate a huge table (3^{-MAX_DEPTH} underflows to 0 long before)
    let max_depth = opts.max_iter.saturating_add(1000).min(MAX_DEPTH);
    // thirds[i] = 3^{-i} by repeated multiplication, as the reference builds it
    let mut thirds = vec![1.0];
    let mut p3 = 3.0;
    for _ in 0..max_depth + 2 {
        thirds.push(1.0 / p3);
        p3 *= 3.0;
    }
    // the reference's scaling: x = (c + l/h)·h during the search, c·h + (l/h)·h at the end
    let h: Vec<f64> = lower.iter().zip(upper).map(|(l, u)| u - l).collect();
    let shift: Vec<f64> = lower.iter().zip(&h).map(|(l, h)| l / h).collect();
    let mut x = vec![0.0; n];
    let mut eval = |c: &[f64], f: &mut dyn FnMut(&[f64]) -> Result<f64>| -> Result<f64> {
        for i in 0..n {
            x[i] = (c[i] + shift[i]) * h[i];
        }
        let v = f(&x)?;
        if !v.is_finite() {
            return Err(Error::InvalidArgument {
                op: OP,
                message: format!(
                    "the objective returned {v} at {x:?}; DIRECT-L needs finite values (map failures to a large finite penalty)"
                ),
            });
        }
        Ok(v)
    };

    let mut s = Store {
        n,
        c: vec![0.0; n],
        len: vec![0; n],
        f: vec![0.0],
        next: vec![0],
    };
    let mut lv = Levels { anchor: Vec::new() };
    let root = s.push(0);
    for i in 0..n {
        s.c[root * n + i] = 0.5;
    }
    s.f[root] = eval(&s.c[root * n..(root + 1) * n], &mut f)?;
    let (mut minf, mut minpos) = (s.f[root], root);
    let mut evals = 1;
    evals += divide(
        &mut s,
        &mut lv,
        root,
        &thirds,
        &mut minf,
        &mut minpos,
        &mut |c| eval(c, &mut f),
    )?;

    let mut stop = DirectStop::MaxIter;
    let mut t = 2;
    'outer: while t < opts.max_iter {
        let chosen = choose(&s, &lv, minf, opts, &thirds);
        for (rect, level) in chosen {
            if level + 1 >= max_depth {
                stop = DirectStop::MaxDepth;
                break 'outer;
            }
            // unlink from its level's list
            let head = lv.head(level);
            if *head == rect {
                *head = s.next[rect];
            } else {
                let mut p = *head;
                while s.next[p] != rect {
                    p = s.next[p];
                }
                s.next[p] = s.next[rect];
            }
            evals += divide(
                &mut s,
                &mut lv,
                rect,
                &thirds,
                &mut minf,
                &mut minpos,
                &mut |c| eval(c, &mut f),
            )?;
        }
        if thirds[s.level0(minpos)] <= opts.vol_tol {
            stop = DirectStop::VolTol;
            break;
        }
        if thirds[s.level(minpos)] <= opts.len_tol {
            stop = DirectStop::LenTol;
            break;
        }
        if let Some(fg) = opts.f_min {
            let scale = if fg == 0.0 { 1.0 } else { fg.abs() };
            if (minf - fg) / scale <= opts.f_min_rtol {
                stop = DirectStop::FMin;
                break;
            }
        }
        if evals > max_evals {
            stop = DirectStop::MaxEvals;
            break;
        }
        t += 1;
    }
    let best = (0..n)
        .map(|i| s.c[minpos * n + i] * h[i] + shift[i] * h[i])
        .collect();
    Ok(DirectResult {
        x: best,
        fun: minf,
        evals,
        iterations: t,
        stop,
    })
}

/// The potentially optimal rectangles among each level's best, largest first, with their
/// levels (the reference's `DIRChoose` with `jones = 1`).
fn choose(
    s: &Store,
    lv: &Levels,
    minf: f64,
    opts: &DirectOptions,
    size: &[f64],
) -> Vec<(usize, usize)> {
    let mut cand: Vec<Option<(usize, usize)>> = lv
        .anchor
        .iter()
        .enumerate()
        .filter(|(_, &a)| a > 0)
        .map(|(level, &a)| Some((a, level)))
        .collect();
    let m = cand.len();
    let target = (minf - opts.eps * minf.abs()).min(minf);
    for j in (0..m).rev() {
        let Some((pj, lj)) = cand[j] else { continue };
        let (fj, dj) = (s.f[pj], size[lj]);
        let mut lower = f64::INFINITY; // the largest admissible K, from larger rectangles
        let mut greater = 0.0f64; // the smallest admissible K, from smaller ones
        let mut keep = true;
        for (i, c) in cand.iter().enumerate() {
            if i == j {
                continue;
            }
            let Some((pi, li)) = *c else { continue };
            let slope = (s.f[pi] - fj) / (size[li] - dj);
            if slope <= 0.0 {
                keep = false;
                break;
            }
            if i < j {
                lower = lower.min(slope);
            } else {
                greater = greater.max(slope);
            }
        }
        if keep {
            keep = if greater <= lower {
                fj - lower * dj <= target
            } else {
                // no admissible rate constant: Gablonsky's rule drops the rectangle; scipy's
                // build (no log file) keeps it, see `Selection::ScipyQuiet`
                opts.selection == Selection::ScipyQuiet
            };
        }
        if !keep {
            cand[j] = None;
        }
    }
    cand.into_iter().flatten().collect()
}

/// Samples `c ± δ e_i` along every longest side of `rect`, trisects in the order of the best
/// sample per side and files the new rectangles and `rect` in their level lists. Returns the
/// number of evaluations.
fn divide(
    s: &mut Store,
    lv: &mut Levels,
    rect: usize,
    thirds: &[f64],
    minf: &mut f64,
    minpos: &mut usize,
    eval: &mut dyn FnMut(&[f64]) -> Result<f64>,
) -> Result<usize> {
    let n = s.n;
    let cur = s.level(rect);
    let delta = thirds[cur + 1];
    let dims: Vec<usize> = (0..n).filter(|&i| s.len[rect * n + i] == cur).collect();
    // new points: per dimension, + then −
    let first = s.f.len();
    for &d in &dims {
        for sign in [1.0, -1.0] {
            let p = s.push(rect);
            s.c[p * n + d] = s.c[rect * n + d] + sign * delta;
        }
    }
    for p in first..s.f.len() {
        let v = eval(&s.c[p * n..(p + 1) * n])?;
        s.f[p] = v;
    }
    for p in first..s.f.len() {
        if s.f[p] < *minf {
            *minf = s.f[p];
            *minpos = p;
        }
    }
    // trisect along the side with the lowest w first (stable among ties)
    let mut order: Vec<usize> = (0..dims.len()).collect();
    let w: Vec<f64> = (0..dims.len())
        .map(|k| s.f[first + 2 * k].min(s.f[first + 2 * k + 1]))
        .collect();
    order.sort_by(|&a, &b| w[a].partial_cmp(&w[b]).expect("finite values"));
    for (r, &k) in order.iter().enumerate() {
        let d = dims[k];
        s.len[rect * n + d] = cur + 1;
        for &later in &order[r..] {
            s.len[(first + 2 * later) * n + d] = cur + 1;
            s.len[(first + 2 * later + 1) * n + d] = cur + 1;
        }
    }
    // file the pairs (in dimension order), then the parent
    for k in 0..dims.len() {
        let (p1, p2) = (first + 2 * k, first + 2 * k + 1);
        let level = s.level(p1);
        let head = *lv.head(level);
        if head == 0 {
            if s.f[p2] < s.f[p1] {
                *lv.head(level) = p2;
                s.next[p2] = p1;
                s.next[p1] = 0;
            } else {
                *lv.head(level) = p1;
                s.next[p1] = p2;
                s.next[p2] = 0;
            }
        } else if s.f[p2] < s.f[p1] {
            if s.f[p2] < s.f[head] {
                *lv.head(level) = p2;
                if s.f[p1] < s.f[head] {
                    s.next[p2] = p1;
                    s.next[p1] = head;
                } else {
                    s.next[p2] = head;
                    s.insert_after(head, p1);
                }
            } else {
                s.insert_after(head, p2);
                s.insert_after(head, p1);
            }
        } else if s.f[p1] < s.f[head] {
            *lv.head(level) = p1;
            if s.f[head] < s.f[p2] {
                s.next[p1] = head;
                s.insert_after(head, p2);
            } else {
                s.next[p1] = p2;
                s.next[p2] = head;
            }
        } else {
            s.insert_after(head, p1);
            s.insert_after(head, p2);
        }
    }
    let level = s.level(rect);
    let head = *lv.head(level);
    if head == 0 || s.f[rect] < s.f[head] {
        *lv.head(level) = rect;
        s.next[rect] = head;
    } else {
        s.insert_after(head, rect);
    }
    Ok(2 * dims.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_quadratic_minimum_and_counts() {
        let r = direct_l(
            |x| Ok((x[0] - 0.25).powi(2) + 2.0 * (x[1] - 0.5).powi(2)),
            &[-1.0, 0.0],
            &[1.0, 2.0],
            &DirectOptions {
                max_evals: Some(300),
                ..DirectOptions::default()
            },
        )
        .unwrap();
        assert!(r.fun < 1e-4, "{r:?}");
        assert!((r.x[0] - 0.25).abs() < 1e-2 && (r.x[1] - 0.5).abs() < 1e-2);
        // the first iteration evaluates the centre and 2n points; later ones 2·(sides)
        assert!(r.evals > 300 && r.evals < 400 && r.stop == DirectStop::MaxEvals);
    }

    #[test]
    fn one_iteration_is_the_centre_and_its_neighbours() {
        let mut seen = Vec::new();
        let r = direct_l(
            |x| {
                seen.push(x.to_vec());
                Ok(x[0] + 2.0 * x[1])
            },
            &[0.0, 0.0],
            &[3.0, 3.0],
            &DirectOptions {
                max_iter: 2,
                ..DirectOptions::default()
            },
        )
        .unwrap();
        // centre (1.5, 1.5), then ±1 along x, then along y
        let want = [[1.5, 1.5], [2.5, 1.5], [0.5, 1.5], [1.5, 2.5], [1.5, 0.5]];
        assert_eq!(seen.len(), 5);
        for (s, w) in seen.iter().zip(want) {
            assert!((s[0] - w[0]).abs() < 1e-15 && (s[1] - w[1]).abs() < 1e-15);
        }
        assert_eq!((r.evals, r.iterations, r.stop), (5, 2, DirectStop::MaxIter));
        assert_eq!(r.x, vec![1.5, 0.5]);
    }

    #[test]
    fn stops_at_a_known_minimum() {
        let r = direct_l(
            |x| Ok(x[0] * x[0] + 1.0),
            &[-1.0],
            &[2.0],
            &DirectOptions {
                f_min: Some(1.0),
                ..DirectOptions::default()
            },
        )
        .unwrap();
        assert_eq!(r.stop, DirectStop::FMin);
        assert!(r.fun - 1.0 <= 1e-4);
    }

    #[test]
    fn errors() {
        let ok = |_: &[f64]| Ok(0.0);
        let d = DirectOptions::default();
        assert!(direct_l(ok, &[], &[], &d).is_err());
        assert!(direct_l(ok, &[1.0], &[1.0], &d)
            .unwrap_err()
            .to_string()
            .contains("lower < upper"));
        assert!(direct_l(ok, &[0.0], &[f64::INFINITY], &d).is_err());
        let e = direct_l(|x| Ok(1.0 / (x[0] - 0.5)), &[0.0], &[1.0], &d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("direct_l") && e.contains("inf"), "{e}");
        let e = direct_l(
            ok,
            &[0.0],
            &[1.0],
            &DirectOptions {
                len_tol: 2.0,
                ..DirectOptions::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("len_tol"), "{e}");
        // a huge iteration limit is capped, not an overflow: the budget stops the search
        let r = direct_l(
            |x| Ok(x[0] * x[0]),
            &[-1.0],
            &[1.0],
            &DirectOptions {
                max_iter: usize::MAX,
                max_evals: Some(30),
                ..DirectOptions::default()
            },
        )
        .unwrap();
        assert_eq!(r.stop, DirectStop::MaxEvals);
        // the objective's own error stops the search and comes back unchanged
        let e = direct_l(
            |_| {
                Err(Error::InvalidArgument {
                    op: "objective",
                    message: "boom".into(),
                })
            },
            &[0.0],
            &[1.0],
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("boom"));
    }
}
