//! Forward and reverse mode describe the same derivative (issue 7, bug 2): for every
//! degeneracy policy and gauge situation, either both refuse with the same error variant,
//! or both succeed and satisfy the dot-product identity `⟨ȳ, J ẋ⟩ = ⟨Jᴴ ȳ, ẋ⟩`.
//! Before the fix, `eigvalsh`/`svdvals`/`eigvals` JVPs returned the block average where the
//! VJP refused (λ_min at a tie: JVP 0.652, one-sided differences −0.535 and +1.839), and a
//! basis-dependent output under `WellDefinedPart` got a JVP while the VJP refused.

use std::mem::discriminant;

use matgrad_engine::testing::{
    complex_matrix, hermitian_from_seed, orthogonal_from_seed, rank_deficient_from_seed,
    real_matrix, symmetric_from_seed,
};
use matgrad_engine::{Axis, Form, Result, Tape, Value, Var};
use matgrad_spectral as sp;
use sp::{DegeneracyPolicy, EighOptions};

type Loss = fn(Var<'_>) -> Result<Var<'_>>;

/// VJP and JVP of the scalar `loss(x)` at `a` along a Hermitian (for `hermitian`) or
/// general random direction.
fn both(a: &Value, loss: Loss, hermitian: bool) -> (Result<f64>, Result<f64>) {
    let (m, n) = a.shape();
    let dir = match a {
        Value::Real(_) => real_matrix(m, n, 99),
        Value::Complex(_) => complex_matrix(m, n, 99),
    };
    let dir = if hermitian { dir.hermitian_part() } else { dir };
    let tape = Tape::new();
    let x = tape.leaf(a.clone()).unwrap();
    let y = match loss(x) {
        Ok(y) => y,
        Err(e) => return (Err(e.clone()), Err(e)),
    };
    let rev = tape.grad(y, &[x]).and_then(|g| g[0].real_inner(&dir));
    let fwd = tape
        .jvp(&[x], std::slice::from_ref(&dir), &[y])
        .map(|t| t[0].scalar_real().unwrap());
    (rev, fwd)
}

fn agree(name: &str, a: &Value, loss: Loss, hermitian: bool, expect_ok: bool) {
    let (rev, fwd) = both(a, loss, hermitian);
    match (&rev, &fwd) {
        (Ok(r), Ok(f)) => {
            assert!(
                expect_ok,
                "{name}: both modes succeeded where both should refuse ({r}, {f})"
            );
            assert!(
                (r - f).abs() <= 1e-12 * r.abs().max(f.abs()).max(1.0),
                "{name}: reverse {r} vs forward {f}"
            );
        }
        (Err(r), Err(f)) => {
            assert!(!expect_ok, "{name}: both refused: {r}");
            assert_eq!(discriminant(r), discriminant(f), "{name}: {r} vs {f}");
            assert!(r.is_degeneracy(), "{name}: {r}");
        }
        _ => panic!("{name}: the modes disagree: reverse {rev:?}, forward {fwd:?}"),
    }
}

fn eigh_wd(x: Var<'_>) -> Result<(Var<'_>, Var<'_>)> {
    sp::eigh_with(
        x,
        EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        },
    )
}

fn svd_wd(x: Var<'_>) -> Result<(Var<'_>, Var<'_>, Var<'_>)> {
    sp::svd_with(
        x,
        EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            ..EighOptions::default()
        },
    )
}

fn eig_wd(x: Var<'_>) -> Result<(Var<'_>, Var<'_>)> {
    sp::eig_with(
        x,
        EighOptions {
            policy: DegeneracyPolicy::WellDefinedPart,
            gap_rtol: sp::EIG_GAP_RTOL,
            ..EighOptions::default()
        },
    )
}

/// Σ_j w_j |X_ij|² over column `col` with fixed weights: invariant to the sign/phase of the
/// column, not to a rotation mixing it with others.
fn weighted_col<'t>(x: Var<'t>, col: usize) -> Result<Var<'t>> {
    let c = x.slice(0..x.shape().0, col..col + 1)?.abs()?;
    let (m, _) = c.shape();
    let w = x
        .tape()
        .constant(Value::Real(faer::Mat::from_fn(m, 1, |i, _| (i + 1) as f64)))?;
    c.mul(c)?.mul(w)?.sum(Axis::All)
}

#[test]
fn symmetric_eigenvalues_at_a_tie() {
    let tie = symmetric_from_seed(&[1.0, 1.0, 2.0], 3);
    // λ_min at a tie: not differentiable (the example)
    agree(
        "eigvalsh λ_min",
        &tie,
        |x| sp::eigvalsh(x)?.slice(0..1, 0..1),
        true,
        false,
    );
    // a symmetric function of the tied values: fine in both modes
    agree(
        "eigvalsh Σλ³",
        &tie,
        |x| sp::eigvalsh(x)?.powf(3.0)?.sum(Axis::All),
        true,
        true,
    );
    agree(
        "eigh λ_min",
        &tie,
        |x| sp::eigh(x)?.0.slice(0..1, 0..1),
        true,
        false,
    );
}

#[test]
fn symmetric_eigenvectors_by_policy() {
    let tie = symmetric_from_seed(&[1.0, 1.0, 3.0], 9);
    // default policy: any use of U at a tie is refused, even a basis-invariant one
    agree(
        "eigh default, u₂",
        &tie,
        |x| weighted_col(sp::eigh(x)?.1, 2),
        true,
        false,
    );
    // well-defined part: invariant losses pass, basis-dependent ones are refused
    agree(
        "eigh wd, u₂",
        &tie,
        |x| weighted_col(eigh_wd(x)?.1, 2),
        true,
        true,
    );
    agree(
        "eigh wd, u₀",
        &tie,
        |x| weighted_col(eigh_wd(x)?.1, 0),
        true,
        false,
    );
    agree(
        "eigh wd, projector on the tied block",
        &tie,
        |x| {
            let u = eigh_wd(x)?.1;
            let b = u.slice(0..3, 0..2)?;
            let p = b.matmul_forms(Form::Plain, b, Form::Adjoint)?;
            weighted_col(p, 1)
        },
        true,
        true,
    );
    // distinct spectrum: everything goes
    let distinct = symmetric_from_seed(&[1.0, 2.0, 3.0], 9);
    agree(
        "eigh distinct, u₀",
        &distinct,
        |x| weighted_col(sp::eigh(x)?.1, 0),
        true,
        true,
    );
}

#[test]
fn complex_phase_gauge() {
    let h = hermitian_from_seed(&[0.5, 1.5, 3.0], 4);
    agree(
        "eigh complex, Re U₁₀",
        &h,
        |x| sp::eigh(x)?.1.slice(1..2, 0..1)?.real()?.sum(Axis::All),
        true,
        false,
    );
    agree(
        "eigh complex, |U|²",
        &h,
        |x| weighted_col(sp::eigh(x)?.1, 1),
        true,
        true,
    );
    let c = complex_matrix(3, 3, 9);
    agree(
        "svd complex, Re U₁₀",
        &c,
        |x| sp::svd(x)?.0.slice(1..2, 0..1)?.real()?.sum(Axis::All),
        false,
        false,
    );
    agree(
        "svd complex, Re (U Vᴴ)₁₀ (joint phase cancels)",
        &c,
        |x| {
            let (u, _, v) = sp::svd(x)?;
            u.matmul_forms(Form::Plain, v, Form::Adjoint)?
                .slice(1..2, 0..1)?
                .real()?
                .sum(Axis::All)
        },
        false,
        true,
    );
    agree(
        "eig complex, Re V₁₀",
        &c,
        |x| sp::eig(x)?.1.slice(1..2, 0..1)?.real()?.sum(Axis::All),
        false,
        false,
    );
    agree(
        "eig complex, |V|²",
        &c,
        |x| weighted_col(sp::eig(x)?.1, 1),
        false,
        true,
    );
}

#[test]
fn singular_values_and_vectors() {
    // an orthogonal matrix: every singular value is 1
    let q = Value::Real(orthogonal_from_seed(3, 2));
    agree(
        "svdvals σ_max at a tie",
        &q,
        |x| sp::svdvals(x)?.slice(0..1, 0..1),
        false,
        false,
    );
    agree(
        "svdvals Σσ at a tie",
        &q,
        |x| sp::svdvals(x)?.sum(Axis::All),
        false,
        true,
    );
    agree(
        "svd default, U used at a tie",
        &q,
        |x| weighted_col(sp::svd(x)?.0, 0),
        false,
        false,
    );
    // well-defined part: U Vᴴ is invariant to the joint turn, U alone is not
    agree(
        "svd wd, U Vᴴ at a tie",
        &q,
        |x| {
            let (u, _, v) = svd_wd(x)?;
            weighted_col(u.matmul_forms(Form::Plain, v, Form::Adjoint)?, 0)
        },
        false,
        true,
    );
    agree(
        "svd wd, u₀ at a tie",
        &q,
        |x| weighted_col(svd_wd(x)?.0, 0),
        false,
        false,
    );
    // rank-deficient rectangle: the singular vectors of the zero singular value are undefined
    let r = rank_deficient_from_seed(4, 3, 2, 1);
    agree(
        "svd rank-deficient, U used",
        &r,
        |x| weighted_col(sp::svd(x)?.0, 0),
        false,
        false,
    );
    agree(
        "svd rank-deficient, S only",
        &r,
        |x| sp::svd(x)?.1.sum(Axis::All),
        false,
        true,
    );
    // svd_full: the extra columns are a basis of the complement
    let tall = real_matrix(4, 2, 5);
    agree(
        "svd_full, one extra column",
        &tall,
        |x| weighted_col(sp::svd_full(x)?.0, 3),
        false,
        false,
    );
    agree(
        "svd_full, projector on the extra columns",
        &tall,
        |x| {
            let u2 = sp::svd_full(x)?.0.slice(0..4, 2..4)?;
            weighted_col(u2.matmul_forms(Form::Plain, u2, Form::Adjoint)?, 0)
        },
        false,
        true,
    );
}

#[test]
fn general_eigenvalues_at_a_tie() {
    // a non-normal matrix with eigenvalues 1, 1, 2 (diagonalizable)
    let s = real_matrix(3, 3, 21);
    let sm = s.as_real().unwrap();
    let sinv = faer::linalg::solvers::DenseSolveCore::inverse(&sm.as_ref().partial_piv_lu());
    let d = faer::mat![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]];
    let a = Value::Real(sm * &d * &sinv);
    agree(
        "eigvals λ at a tie",
        &a,
        |x| sp::eigvals(x)?.real()?.slice(0..1, 0..1),
        false,
        false,
    );
    agree(
        "eigvals Σλ at a tie",
        &a,
        |x| sp::eigvals(x)?.real()?.sum(Axis::All),
        false,
        true,
    );
    agree(
        "eig default, V used",
        &a,
        |x| weighted_col(sp::eig(x)?.1, 2),
        false,
        false,
    );
    agree(
        "eig wd, basis-dependent",
        &a,
        |x| weighted_col(eig_wd(x)?.1, 0),
        false,
        false,
    );
}

/// Regression: under `WellDefinedPart` the SVD rules masked the whole `1/(sⱼ² − sᵢ²)` term
/// of a tied pair, dropping its finite `1/(sⱼ + sᵢ)` part. The polar factor `U Vᴴ` of an
/// orthogonal Q (all singular values tied at 1) is invariant to the joint turn, so its
/// gradient exists: `d(UVᴴ)[Ȧ] = (Ȧ − Q Ȧᵀ Q)/2`, hence `∇⟨G, UVᴴ⟩ = (G − Q Gᵀ Q)/2`.
/// Before the fix the rule returned a gradient 100 % off, in both modes (found by the
/// registry sweep).
#[test]
fn polar_factor_at_an_orthogonal_matrix_closed_form() {
    let q = orthogonal_from_seed(4, 17);
    let g = real_matrix(4, 4, 18);
    let tape = Tape::new();
    let x = tape.leaf(Value::Real(q.clone())).unwrap();
    let (u, _, v) = svd_wd(x).unwrap();
    let p = u.matmul_forms(Form::Plain, v, Form::Adjoint).unwrap();
    let got = tape
        .vjp(&[p], std::slice::from_ref(&g), &[x])
        .unwrap()
        .remove(0);
    let gm = g.as_real().unwrap();
    let want = faer::Mat::from_fn(4, 4, |i, j| {
        let qgq = &q * gm.transpose() * &q;
        0.5 * (gm[(i, j)] - qgq[(i, j)])
    });
    let d = got.rel_diff(&Value::Real(want)).unwrap();
    assert!(d < 1e-12, "polar factor gradient off by {d:e}");
    // forward mode: d(UVᴴ)[E] = (E − Q Eᵀ Q)/2
    let e = real_matrix(4, 4, 19);
    let t = tape
        .jvp(&[x], std::slice::from_ref(&e), &[p])
        .unwrap()
        .remove(0);
    let em = e.as_real().unwrap();
    let qeq = &q * em.transpose() * &q;
    let want_t = faer::Mat::from_fn(4, 4, |i, j| 0.5 * (em[(i, j)] - qeq[(i, j)]));
    assert!(t.rel_diff(&Value::Real(want_t)).unwrap() < 1e-12);
}
