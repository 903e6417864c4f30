//! Embedding matgrad: a user's own op, checked with the public checker and swept with the
//! registry; a Jacobian, a Hessian and a Hessian-vector product; a `.npy` round trip; and a
//! degeneracy error matched after `tape.grad` — public API and `?` throughout.

use std::rc::Rc;

use matgrad::engine::cases;
use matgrad::engine::spec::{check_op, OpSpec};
use matgrad::engine::testing::{real_matrix, symmetric_from_seed};
use matgrad::prelude::*;

/// `y = x³` entrywise: the user's op. Its VJP and JVP are written with engine ops, so the
/// engine differentiates them again (second order for free).
struct Cube;

impl Op for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn vjp<'t>(&self, ctx: &OpCtx<'_, 't>, ct: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(g) = ct[0] else {
            return Ok(vec![None]);
        };
        let x = ctx.input(0);
        Ok(vec![Some(g.mul(x.mul(x)?.scale(3.0)?.conj()?)?)])
    }
    fn jvp<'t>(&self, ctx: &OpCtx<'_, 't>, t: &[Option<Var<'t>>]) -> Result<Vec<Option<Var<'t>>>> {
        let Some(d) = t[0] else { return Ok(vec![None]) };
        let x = ctx.input(0);
        Ok(vec![Some(x.mul(x)?.scale(3.0)?.mul(d)?)])
    }
}

fn cube(x: Var<'_>) -> Result<Var<'_>> {
    let y = x.mul(x)?.mul(x)?.value(); // the forward value, computed however one likes
    x.tape().record1(Rc::new(Cube), &[x], y)
}

fn main() -> Result<()> {
    // 1. the op passes the public checker (FD, dot product, both second orders)
    let report = check(
        |_, x| cube(x[0]),
        &[real_matrix(3, 2, 1)],
        &CheckOptions::default(),
    )?;
    assert!(report.passed, "{report}");
    println!("cube, checker: {report}");

    // 2. registered next to matgrad's own ops, it is swept like them
    let mut registry = matgrad::registry();
    registry.register(
        OpSpec::new("cube", "x³ entrywise")
            .input("X")
            .apply(|x, _| Ok(vec![cube(x[0])?]))
            .cases(|| cases::general(5)),
    )?;
    let sweep = check_op(registry.get("cube").expect("registered"));
    assert!(sweep.passed(), "{:?}", sweep.failures);
    println!("cube, sweep: {} checks pass", sweep.lines.len());

    // 3. dense Jacobian and Hessian, and a Hessian-vector product
    let x = Value::Real(faer::mat![[1.0, -2.0]]);
    let (_, j) = jacobian(|_, v| cube(v[0]), std::slice::from_ref(&x))?;
    assert_eq!(j[0].as_real().expect("real")[(1, 1)], 12.0); // 3·(−2)²
    let h = hessian(|_, v| cube(v[0])?.sum(Axis::All), std::slice::from_ref(&x))?;
    assert_eq!(h[0][0].as_real().expect("real")[(1, 1)], -12.0); // 6·(−2)
    let ones = Value::Real(faer::mat![[1.0, 1.0]]);
    let hv = hvp(
        |_, v| cube(v[0])?.sum(Axis::All),
        std::slice::from_ref(&x),
        &[ones],
    )?;
    assert_eq!(hv[0].as_real().expect("real")[(0, 0)], 6.0);
    println!("jacobian, hessian, hvp: ok");

    // 4. .npy in and out
    let dir = std::env::temp_dir().join(format!("matgrad-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::File {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let path = dir.join("x.npy");
    matgrad::npy::write(&path, &x)?;
    let back = matgrad::npy::read(&path)?;
    assert_eq!(back.as_real().expect("real")[(0, 1)], -2.0);
    let _ = std::fs::remove_dir_all(&dir);
    println!("npy round trip: ok");

    // 5. a degeneracy error survives the tape as a typed variant
    let tape = Tape::new();
    let a = tape.leaf(symmetric_from_seed(&[1.0, 1.0, 3.0], 7))?;
    let (_, u) = a.eigh()?;
    let first = u.slice(0..3, 0..1)?.abs()?.sum(Axis::All)?;
    match tape.grad(first, &[a]) {
        Err(Error::Degenerate { op, i, j, .. }) => {
            println!("as expected: {op} refuses at the tie of values {i} and {j}")
        }
        other => panic!("expected a degeneracy error, got {other:?}"),
    }
    // while a basis-invariant loss of the same matrix is differentiable, exactly
    let y = a.logm_sym()?.trace()?;
    let g = tape.grad(y, &[a])?;
    println!("tr log A at a tie: gradient {:?}", g[0].shape());
    Ok(())
}
