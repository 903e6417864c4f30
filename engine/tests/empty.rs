//! Zero-sized matrices (issue 7, bug 8): an empty input gives an empty output (or the
//! closed form of an empty sum or product) and an empty gradient, as in numpy and PyTorch.
//! The one refusal is `mean`, whose value over no entries is undefined.

use matgrad_engine::{Axis, DType, Error, Result, Tape, Value, Var};

fn zeros(m: usize, n: usize) -> Value {
    Value::zeros(DType::F64, m, n)
}

/// Applies `f`, checks the output's shape and (when given) its single value, then the
/// gradient of `Re Σ` of the output: one empty cotangent per empty input.
fn case(
    name: &str,
    inputs: Vec<Value>,
    f: impl for<'t> Fn(&[Var<'t>]) -> Result<Var<'t>>,
    shape: (usize, usize),
    value: Option<f64>,
) {
    for dtype in [DType::F64, DType::C64] {
        let tape = Tape::new();
        let xs: Vec<Var<'_>> = inputs
            .iter()
            .map(|v| {
                let v = if dtype == DType::C64 {
                    Value::Complex(v.to_complex())
                } else {
                    v.clone()
                };
                tape.leaf(v).unwrap()
            })
            .collect();
        let y = f(&xs).unwrap_or_else(|e| panic!("{name} ({dtype}): {e}"));
        assert_eq!(y.shape(), shape, "{name} ({dtype})");
        if let Some(want) = value {
            let got = y.value();
            let got = match &got {
                Value::Real(m) => m[(0, 0)],
                Value::Complex(m) => m[(0, 0)].re,
            };
            assert_eq!(got, want, "{name} ({dtype})");
        }
        let (r, c) = y.shape();
        let ybar = Value::zeros(y.dtype(), r, c);
        let g = tape.vjp(&[y], &[ybar], &xs).unwrap();
        for (gi, x) in g.iter().zip(&xs) {
            assert_eq!(gi.shape(), x.shape(), "{name} gradient");
        }
        let tangents: Vec<Value> = xs.iter().map(|x| x.value()).collect();
        let t = tape.jvp(&xs, &tangents, &[y]).unwrap();
        assert_eq!(t[0].shape(), shape, "{name} tangent");
    }
}

#[test]
fn empty_inputs_give_empty_outputs_and_gradients() {
    let e03 = zeros(0, 3);
    let e00 = zeros(0, 0);
    case(
        "add",
        vec![e03.clone(), e03.clone()],
        |x| x[0].add(x[1]),
        (0, 3),
        None,
    );
    case(
        "mul",
        vec![e03.clone(), e03.clone()],
        |x| x[0].mul(x[1]),
        (0, 3),
        None,
    );
    case("exp", vec![e03.clone()], |x| x[0].exp(), (0, 3), None);
    case(
        "transpose",
        vec![e03.clone()],
        |x| x[0].transpose(),
        (3, 0),
        None,
    );
    case(
        "reshape",
        vec![e03.clone()],
        |x| x[0].reshape(3, 0),
        (3, 0),
        None,
    );
    case("vec", vec![e03.clone()], |x| x[0].vec(), (0, 1), None);
    case(
        "matmul (2×0)(0×3)",
        vec![zeros(2, 0), e03.clone()],
        |x| x[0].matmul(x[1]),
        (2, 3),
        None,
    );
    case(
        "matmul (0×2)(2×3)",
        vec![zeros(0, 2), zeros(2, 3)],
        |x| x[0].matmul(x[1]),
        (0, 3),
        None,
    );
    case(
        "sum",
        vec![e03.clone()],
        |x| x[0].sum(Axis::All),
        (1, 1),
        Some(0.0),
    );
    case(
        "sum rows",
        vec![e03.clone()],
        |x| x[0].sum(Axis::Rows),
        (1, 3),
        None,
    );
    case(
        "sum cols",
        vec![e03.clone()],
        |x| x[0].sum(Axis::Cols),
        (0, 1),
        None,
    );
    case(
        "trace",
        vec![e00.clone()],
        |x| x[0].trace(),
        (1, 1),
        Some(0.0),
    );
    case(
        "trace 0×3",
        vec![e03.clone()],
        |x| x[0].trace(),
        (1, 1),
        Some(0.0),
    );
    case(
        "norm",
        vec![e03.clone()],
        |x| x[0].norm(),
        (1, 1),
        Some(0.0),
    );
    case("det", vec![e00.clone()], |x| x[0].det(), (1, 1), Some(1.0));
    case(
        "logdet",
        vec![e00.clone()],
        |x| x[0].logdet(),
        (1, 1),
        Some(0.0),
    );
    case("inv", vec![e00.clone()], |x| x[0].inv(), (0, 0), None);
    case(
        "solve",
        vec![e00.clone(), zeros(0, 2)],
        |x| x[0].solve(x[1]),
        (0, 2),
        None,
    );
    case(
        "adjugate",
        vec![e00.clone()],
        |x| x[0].adjugate(),
        (0, 0),
        None,
    );
    case(
        "cholesky",
        vec![e00.clone()],
        |x| x[0].cholesky(),
        (0, 0),
        None,
    );
    case(
        "logdet_spd",
        vec![e00.clone()],
        |x| x[0].logdet_spd(),
        (1, 1),
        Some(0.0),
    );
    case(
        "kron",
        vec![e03.clone(), zeros(2, 2)],
        |x| x[0].kron(x[1]),
        (0, 6),
        None,
    );
    case(
        "hcat",
        vec![zeros(2, 0), zeros(2, 1)],
        |x| Var::hcat(&[x[0], x[1]]),
        (2, 1),
        None,
    );
    case("diag", vec![e03.clone()], |x| x[0].diag(), (0, 1), None);
    case(
        "diag_embed",
        vec![zeros(0, 1)],
        |x| x[0].diag_embed(0, 4),
        (0, 4),
        None,
    );
    case(
        "slice",
        vec![zeros(2, 2)],
        |x| x[0].slice(1..1, 0..2),
        (0, 2),
        None,
    );
    case(
        "broadcast",
        vec![zeros(1, 1)],
        |x| x[0].broadcast_to(0, 4),
        (0, 4),
        None,
    );
    case("sym", vec![e00.clone()], |x| x[0].sym(), (0, 0), None);
    case(
        "tril_scaled",
        vec![e00.clone()],
        |x| x[0].tril_scaled(0.5),
        (0, 0),
        None,
    );
    case(
        "dot_real",
        vec![e03.clone(), e03.clone()],
        |x| x[0].dot_real(x[1]),
        (1, 1),
        Some(0.0),
    );
}

#[test]
fn mean_of_nothing_is_an_error() {
    let tape = Tape::new();
    let x = tape.leaf(zeros(0, 3)).unwrap();
    assert!(matches!(
        x.mean(Axis::All),
        Err(Error::Empty { op: "mean", .. })
    ));
    assert!(matches!(x.mean(Axis::Rows), Err(Error::Empty { .. })));
    // averaging each of zero rows is fine: an empty column
    assert_eq!(x.mean(Axis::Cols).unwrap().shape(), (0, 1));
}
