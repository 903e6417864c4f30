//! Zero-sized inputs to the spectral ops (issue 7, bug 8): an empty matrix has an empty
//! spectrum, so every decomposition returns empty factors and every matrix function an
//! empty matrix, with empty gradients. Shapes follow numpy/PyTorch: `eigh` of 0×0 gives
//! λ 0×1 and U 0×0; the thin SVD of m×0 gives U m×0, S 0×1, V 0×0.

use matgrad_engine::{DType, Result, Tape, Value, Var};
use matgrad_spectral as sp;

fn run(
    name: &str,
    m: usize,
    n: usize,
    f: impl for<'t> Fn(Var<'t>) -> Result<Vec<Var<'t>>>,
    shapes: &[(usize, usize)],
) {
    for dtype in [DType::F64, DType::C64] {
        let tape = Tape::new();
        let x = tape.leaf(Value::zeros(dtype, m, n)).unwrap();
        let ys = f(x).unwrap_or_else(|e| panic!("{name} {dtype} {m}×{n}: {e}"));
        let got: Vec<(usize, usize)> = ys.iter().map(|y| y.shape()).collect();
        assert_eq!(got, shapes, "{name} {dtype}");
        let cts: Vec<Value> = ys
            .iter()
            .map(|y| Value::zeros(y.dtype(), y.shape().0, y.shape().1))
            .collect();
        let g = tape.vjp(&ys, &cts, &[x]).unwrap();
        assert_eq!(g[0].shape(), (m, n), "{name} gradient");
        // forward mode on the raw outputs: refused only where an output is a gauge choice
        // (svd_full's extra columns are an arbitrary basis of the complement)
        match tape.jvp(&[x], &[Value::zeros(dtype, m, n)], &ys) {
            Ok(t) => assert_eq!(t.len(), ys.len()),
            Err(e) => assert!(
                name.starts_with("svd_full") && e.is_degeneracy(),
                "{name}: {e}"
            ),
        }
    }
}

#[test]
fn empty_spectral_inputs() {
    run(
        "eigh",
        0,
        0,
        |x| {
            let (l, u) = sp::eigh(x)?;
            Ok(vec![l, u])
        },
        &[(0, 1), (0, 0)],
    );
    run("eigvalsh", 0, 0, |x| Ok(vec![sp::eigvalsh(x)?]), &[(0, 1)]);
    for f in [
        sp::logm_sym,
        sp::sqrtm_sym,
        sp::expm_sym,
        sp::expm,
        sp::logm,
        sp::sqrtm,
    ] {
        run("matrix function", 0, 0, |x| Ok(vec![f(x)?]), &[(0, 0)]);
    }
    run(
        "powm_sym",
        0,
        0,
        |x| Ok(vec![sp::powm_sym(x, 0.5)?]),
        &[(0, 0)],
    );
    run(
        "eigh_projector k=0",
        0,
        0,
        |x| Ok(vec![sp::eigh_projector(x, 0, sp::Which::Smallest)?]),
        &[(0, 0)],
    );
    run(
        "svd 3×0",
        3,
        0,
        |x| {
            let (u, s, v) = sp::svd(x)?;
            Ok(vec![u, s, v])
        },
        &[(3, 0), (0, 1), (0, 0)],
    );
    run(
        "svd 0×2",
        0,
        2,
        |x| {
            let (u, s, v) = sp::svd(x)?;
            Ok(vec![u, s, v])
        },
        &[(0, 0), (0, 1), (2, 0)],
    );
    run(
        "svdvals 0×2",
        0,
        2,
        |x| Ok(vec![sp::svdvals(x)?]),
        &[(0, 1)],
    );
    run(
        "svd_full 3×0",
        3,
        0,
        |x| {
            let (u, s, v) = sp::svd_full(x)?;
            Ok(vec![u, s, v])
        },
        &[(3, 3), (0, 1), (0, 0)],
    );
    run(
        "eig",
        0,
        0,
        |x| {
            let (l, v) = sp::eig(x)?;
            Ok(vec![l, v])
        },
        &[(0, 1), (0, 0)],
    );
    run("eigvals", 0, 0, |x| Ok(vec![sp::eigvals(x)?]), &[(0, 1)]);
    run(
        "batched, no blocks",
        0,
        3,
        |x| Ok(vec![sp::matrix_function_sym_batched(x, 3, sp::SymFn::Exp)?]),
        &[(0, 3)],
    );
}
