//! The registration of every engine op: one [`OpSpec`] each (see [`crate::spec`]). Adding
//! an op = its file in `ops/` + one entry here.

use crate::cases;
use crate::check::{Domain, Tolerance};
use crate::error::{EngineError, Result};
use crate::ops::{Axis, Form};
use crate::spec::{Case, OpSpec, Params};
use crate::testing::{complex_matrix, rank_deficient_from_seed, real_matrix};
use crate::value::{DType, Value, C64};
use crate::Var;

fn axis(p: &Params) -> Result<Axis> {
    Ok(match p.choice("axis", &["all", "rows", "cols"])? {
        "all" => Axis::All,
        "rows" => Axis::Rows,
        _ => Axis::Cols,
    })
}

fn form(p: &Params, name: &str) -> Result<Form> {
    Ok(match p.choice(name, &["plain", "adjoint"])? {
        "plain" => Form::Plain,
        _ => Form::Adjoint,
    })
}

/// `"a:b"` into `a..b`.
fn range(p: &Params, name: &str) -> Result<std::ops::Range<usize>> {
    let v = p.str(name)?;
    let bad = || EngineError::InvalidArgument {
        op: "slice",
        message: format!("parameter {name}={v} must be START:END with nonnegative integers"),
    };
    let (a, b) = v.split_once(':').ok_or_else(bad)?;
    Ok(a.trim().parse().map_err(|_| bad())?..b.trim().parse().map_err(|_| bad())?)
}

/// `"2,0,2"` into `[2, 0, 2]` (empty string: no indices).
fn indices(p: &Params, name: &str) -> Result<Vec<usize>> {
    let v = p.str(name)?;
    if v.trim().is_empty() {
        return Ok(Vec::new());
    }
    v.split(',')
        .map(|t| {
            t.trim().parse().map_err(|_| EngineError::InvalidArgument {
                op: "take_rows",
                message: format!(
                    "parameter {name}={v} must be comma-separated nonnegative integers"
                ),
            })
        })
        .collect()
}

fn one(v: Var<'_>) -> Result<Vec<Var<'_>>> {
    Ok(vec![v])
}

fn unary(name: &'static str, summary: &'static str) -> OpSpec {
    OpSpec::new(name, summary).input("X")
}

fn binary(name: &'static str, summary: &'static str) -> OpSpec {
    OpSpec::new(name, summary).input("A").input("B")
}

fn matmul_cases() -> Vec<Case> {
    vec![
        Case::new(
            "real 1×1·1×1",
            vec![real_matrix(1, 1, 9), real_matrix(1, 1, 10)],
        ),
        Case::new(
            "real 3×4·4×2",
            vec![real_matrix(3, 4, 11), real_matrix(4, 2, 12)],
        ),
        Case::new(
            "real 5×1·1×4 (outer)",
            vec![real_matrix(5, 1, 13), real_matrix(1, 4, 14)],
        ),
        Case::new(
            "complex 2×3·3×5",
            vec![complex_matrix(2, 3, 15), complex_matrix(3, 5, 16)],
        ),
        Case::new(
            "empty inner 2×0·0×3",
            vec![
                Value::zeros(DType::F64, 2, 0),
                Value::zeros(DType::F64, 0, 3),
            ],
        ),
        Case::new(
            "complex 4×4·4×4",
            vec![complex_matrix(4, 4, 17), complex_matrix(4, 4, 18)],
        ),
    ]
}

fn scalar_pair_cases() -> Vec<Case> {
    vec![
        Case::new(
            "real 3×2 · 1×1",
            vec![real_matrix(3, 2, 20), real_matrix(1, 1, 21)],
        ),
        Case::new(
            "complex 2×2 · 1×1",
            vec![complex_matrix(2, 2, 22), complex_matrix(1, 1, 23)],
        ),
    ]
}

fn kron_cases() -> Vec<Case> {
    vec![
        Case::new(
            "real 2×3 ⊗ 3×2",
            vec![real_matrix(2, 3, 26), real_matrix(3, 2, 27)],
        ),
        Case::new(
            "complex 2×2 ⊗ 1×2",
            vec![complex_matrix(2, 2, 28), complex_matrix(1, 2, 29)],
        ),
        Case::new(
            "empty 0×2 ⊗ 3×1",
            vec![Value::zeros(DType::F64, 0, 2), real_matrix(3, 1, 30)],
        ),
    ]
}

fn kron_contract_cases() -> Vec<Case> {
    vec![
        Case::new(
            "real 6×6 by 3×2",
            vec![real_matrix(6, 6, 31), real_matrix(3, 2, 32)],
        ),
        Case::new(
            "complex 4×2 by 2×1",
            vec![complex_matrix(4, 2, 33), complex_matrix(2, 1, 34)],
        ),
    ]
}

fn solve_cases() -> Vec<Case> {
    vec![
        Case::new(
            "real 1×1, 1×2",
            vec![
                cases::shifted(DType::F64, 1, 1.0, 17),
                real_matrix(1, 2, 18),
            ],
        ),
        Case::new(
            "real 4×4, 4×3",
            vec![
                cases::shifted(DType::F64, 4, 4.0, 19),
                real_matrix(4, 3, 20),
            ],
        ),
        Case::new(
            "complex 3×3, 3×2",
            vec![
                cases::shifted(DType::C64, 3, 3.0, 21),
                complex_matrix(3, 2, 22),
            ],
        ),
        Case::new(
            "cond ≈ 1e4, 4×4, 4×1",
            vec![cases::ill_conditioned(4, 1e4, 23), real_matrix(4, 1, 24)],
        )
        .tol(Tolerance::BALANCED),
        Case::new(
            "empty 0×0, 0×2",
            vec![
                Value::zeros(DType::F64, 0, 0),
                Value::zeros(DType::F64, 0, 2),
            ],
        ),
    ]
}

fn det_cases() -> Vec<Case> {
    let mut v = cases::invertible(40);
    // det is a polynomial: its gradient (the adjugate) exists at singular matrices
    v.push(Case::new(
        "singular 4×4 of rank 3",
        vec![rank_deficient_from_seed(4, 4, 3, 41)],
    ));
    // At rank ≤ n−2 the gradient is exactly 0 and det(A + hE) = O(h²), but its LU value
    // carries rounding of ε·(products of the larger singular values), not ε·|det|: the
    // finite differences are noisier than the checker's ε|φ|/h bound, hence BALANCED. The
    // exact values are checked against sympy in tests/golden_det.rs.
    v.push(
        Case::new(
            "singular 4×4 of rank 2",
            vec![rank_deficient_from_seed(4, 4, 2, 42)],
        )
        .tol(Tolerance::BALANCED),
    );
    v.push(Case::new("zero 2×2", vec![Value::zeros(DType::F64, 2, 2)]).tol(Tolerance::BALANCED));
    v
}

fn adjugate_cases() -> Vec<Case> {
    det_cases()
        .into_iter()
        .map(|c| c.first_order()) // its second derivative is det's third
        .collect()
}

fn spd_hermitian_cases() -> Vec<Case> {
    cases::spd(50)
}

fn square_general(seed: u64) -> Vec<Case> {
    vec![
        Case::new("real 1×1", vec![real_matrix(1, 1, seed)]),
        Case::new("real 4×4", vec![real_matrix(4, 4, seed + 1)]),
        Case::new("complex 3×3", vec![complex_matrix(3, 3, seed + 2)]),
        Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]),
    ]
}

fn structure_cases(seed: u64, shapes: &[(usize, usize)]) -> Vec<Case> {
    let mut v = Vec::new();
    for &(m, n) in shapes {
        v.push(Case::new(
            format!("real {m}×{n}"),
            vec![real_matrix(m, n, seed)],
        ));
        v.push(Case::new(
            format!("complex {m}×{n}"),
            vec![complex_matrix(m, n, seed + 1)],
        ));
    }
    v
}

fn concat_cases(rows: bool) -> Vec<Case> {
    let (a, b) = if rows {
        ((2, 3), (4, 3))
    } else {
        ((3, 2), (3, 4))
    };
    vec![
        Case::new(
            "real",
            vec![real_matrix(a.0, a.1, 60), real_matrix(b.0, b.1, 61)],
        ),
        Case::new(
            "complex",
            vec![complex_matrix(a.0, a.1, 62), complex_matrix(b.0, b.1, 63)],
        ),
        Case::new(
            "with an empty part",
            vec![
                Value::zeros(
                    DType::F64,
                    if rows { 0 } else { 3 },
                    if rows { 3 } else { 0 },
                ),
                real_matrix(b.0, b.1, 64),
            ],
        ),
    ]
}

fn tanh_cases() -> Vec<Case> {
    let mut v = cases::general(70);
    // complex tanh far out, where the textbook formula overflows (issue 7, bug 8)
    v.push(Case::new(
        "complex, |Re z| up to 400",
        vec![Value::Complex(faer::Mat::from_fn(2, 2, |i, j| {
            C64::new(
                [400.0, -30.0, 0.3, -400.0][i + 2 * j],
                0.7 * (i as f64 - j as f64),
            )
        }))],
    ));
    v
}

fn sigmoid_cases() -> Vec<Case> {
    let mut v = cases::general(71);
    v.push(Case::new(
        "complex, |Re z| up to 800",
        vec![Value::Complex(faer::Mat::from_fn(2, 2, |i, j| {
            C64::new(
                [800.0, -40.0, 0.3, -800.0][i + 2 * j],
                0.7 * (i as f64 - j as f64),
            )
        }))],
    ));
    v
}

/// Every engine op.
pub fn specs() -> Vec<OpSpec> {
    vec![
        binary("add", "A + B (same shape and dtype)")
            .apply(|x, _| one(x[0].add(x[1])?))
            .cases(|| cases::pairs(1)),
        binary("sub", "A − B")
            .apply(|x, _| one(x[0].sub(x[1])?))
            .cases(|| cases::pairs(2)),
        binary("mul", "A ∘ B (Hadamard product)")
            .apply(|x, _| one(x[0].mul(x[1])?))
            .cases(|| cases::pairs(3)),
        binary("div", "A ⊘ B entrywise (B without zeros)")
            .apply(|x, _| one(x[0].div(x[1])?))
            .cases(|| cases::pairs(4)),
        unary("neg", "−X")
            .apply(|x, _| one(x[0].neg()?))
            .cases(|| cases::general(5)),
        unary("scale", "c·X for a real constant c")
            .param("c", "-1.5", "the real factor")
            .apply(|x, p| one(x[0].scale(p.f64("c")?)?))
            .cases(|| cases::general(6)),
        unary("scale_complex", "c·X for a complex constant c (complex X)")
            .param("re", "0.3", "real part of c")
            .param("im", "-1.2", "imaginary part of c")
            .apply(|x, p| one(x[0].scale_complex(C64::new(p.f64("re")?, p.f64("im")?))?))
            .cases(|| {
                cases::SHAPES
                    .iter()
                    .map(|&(m, n)| {
                        Case::new(format!("complex {m}×{n}"), vec![complex_matrix(m, n, 7)])
                    })
                    .collect()
            }),
        unary("add_scalar", "X + c (every entry)")
            .param("c", "0.5", "the real constant")
            .apply(|x, p| one(x[0].add_scalar(p.f64("c")?)?))
            .cases(|| cases::general(8)),
        unary("add_identity", "X + c·I (square X)")
            .param("c", "2", "the real constant")
            .apply(|x, p| one(x[0].add_identity(p.f64("c")?)?))
            .cases(|| square_general(9)),
        OpSpec::new("mul_scalar", "s·A for a 1×1 matrix s (same dtype as A)")
            .input("A")
            .input("s")
            .apply(|x, _| one(x[0].mul_scalar(x[1])?))
            .cases(scalar_pair_cases),
        binary(
            "bmm",
            "batched product of stacked blocks: C_b = op(A_b) op(B_b), A (batch·p)×q, B (batch·r)×s",
        )
        .param("batch", "2", "number of blocks in each stack")
        .param("a", "plain", "plain | adjoint: use A_b or A_bᴴ")
        .param("b", "plain", "plain | adjoint: use B_b or B_bᴴ")
        .apply(|x, p| {
            one(x[0].bmm_forms(form(p, "a")?, x[1], form(p, "b")?, p.usize("batch")?)?)
        })
        .cases(|| {
            vec![
                Case::new(
                    "real 2×(2×3 · 3×4)",
                    vec![real_matrix(4, 3, 70), real_matrix(6, 4, 71)],
                ),
                Case::new(
                    "Gram FᵦᵀFᵦ, 3×(4×2), one input twice",
                    vec![real_matrix(12, 2, 72), real_matrix(12, 2, 72)],
                )
                .param("batch", "3")
                .param("a", "adjoint"),
                Case::new(
                    "complex 2×(A_b B_bᴴ), 2×3 and 4×3",
                    vec![complex_matrix(4, 3, 73), complex_matrix(8, 3, 74)],
                )
                .param("b", "adjoint"),
                Case::new(
                    "complex 2×(A_bᴴ B_bᴴ)",
                    vec![complex_matrix(6, 2, 75), complex_matrix(2, 3, 76)],
                )
                .param("a", "adjoint")
                .param("b", "adjoint"),
                Case::new(
                    "one block 1×1",
                    vec![real_matrix(1, 1, 77), real_matrix(1, 1, 78)],
                )
                .param("batch", "1"),
            ]
        }),
        unary(
            "gram",
            "scaled, ridged Gram of stacked blocks: C_b = α F_bᴴ F_b + εI, F (batch·m)×d",
        )
        .param("batch", "1", "number of blocks in the stack")
        .param("alpha", "1", "the factor α (1/m for a covariance)")
        .param("ridge", "0", "the constant ε added to each diagonal")
        .apply(|x, p| {
            one(x[0].gram_blocks(p.usize("batch")?, p.f64("alpha")?, p.f64("ridge")?)?)
        })
        .cases(|| {
            vec![
                Case::new("real 5×3", vec![real_matrix(5, 3, 80)]),
                Case::new("real wide 2×4 (rank-deficient Gram)", vec![real_matrix(2, 4, 81)]),
                Case::new("complex 4×3", vec![complex_matrix(4, 3, 82)]),
                Case::new(
                    "covariances of 3×(6×2), α = 1/6, ε = 0.01",
                    vec![real_matrix(18, 2, 83)],
                )
                .param("batch", "3")
                .param("alpha", "0.16666666666666666")
                .param("ridge", "0.01"),
                Case::new("complex 2×(3×3), α = −2", vec![complex_matrix(6, 3, 84)])
                    .param("batch", "2")
                    .param("alpha", "-2"),
            ]
        }),
        unary("herm_sum", "α (X_b + X_bᴴ) on each square block of a stack")
            .param("alpha", "1", "the factor α")
            .param("batch", "1", "number of square blocks in the stack")
            .apply(|x, p| one(x[0].herm_sum(p.f64("alpha")?, p.usize("batch")?)?))
            .cases(|| {
                vec![
                    Case::new("real 3×3", vec![real_matrix(3, 3, 85)]),
                    Case::new("complex 2×(2×2), α = 0.5", vec![complex_matrix(4, 2, 86)])
                        .param("batch", "2")
                        .param("alpha", "0.5"),
                ]
            }),
        binary("matmul", "A B")
            .param("a", "plain", "plain | adjoint: use A or Aᴴ")
            .param("b", "plain", "plain | adjoint: use B or Bᴴ")
            .apply(|x, p| one(x[0].matmul_forms(form(p, "a")?, x[1], form(p, "b")?)?))
            .cases(|| {
                let mut v = matmul_cases();
                v.push(
                    Case::new(
                        "Aᴴ Bᴴ, complex 3×2, 4×3",
                        vec![complex_matrix(3, 2, 18), complex_matrix(4, 3, 19)],
                    )
                    .param("a", "adjoint")
                    .param("b", "adjoint"),
                );
                v
            }),
        binary("kron", "A ⊗ B")
            .apply(|x, _| one(x[0].kron(x[1])?))
            .cases(kron_cases),
        OpSpec::new(
            "kron_contract_left",
            "Σ_{k,l} conj(B[k,l]) G[i p + k, j q + l] (the adjoint of A ↦ A ⊗ B)",
        )
        .input("G")
        .input("B")
        .apply(|x, _| one(x[0].kron_contract_left(x[1])?))
        .cases(kron_contract_cases),
        OpSpec::new(
            "kron_contract_right",
            "Σ_{i,j} conj(A[i,j]) G[i p + k, j q + l] (the adjoint of B ↦ A ⊗ B)",
        )
        .input("G")
        .input("A")
        .apply(|x, _| one(x[0].kron_contract_right(x[1])?))
        .cases(kron_contract_cases),
        unary("transpose", "Xᵀ")
            .apply(|x, _| one(x[0].transpose()?))
            .cases(|| cases::general(10)),
        unary("adjoint", "Xᴴ")
            .apply(|x, _| one(x[0].adjoint()?))
            .cases(|| cases::general(11)),
        unary("conj", "conj(X) entrywise")
            .apply(|x, _| one(x[0].conj()?))
            .cases(|| cases::general(12)),
        unary("real", "Re X (real output)")
            .apply(|x, _| one(x[0].real()?))
            .cases(|| cases::general(13)),
        unary(
            "imag",
            "Im X (real output; complex X only — a real matrix has no imaginary part)",
        )
        .apply(|x, _| one(x[0].imag()?))
        .cases(|| {
            cases::general(14)
                .into_iter()
                .filter(|c| c.label.starts_with("complex"))
                .collect()
        }),
        unary("to_complex", "X as complex (a no-op for complex X)")
            .apply(|x, _| one(x[0].to_complex()?))
            .cases(|| cases::general(15)),
        unary("exp", "eˣ entrywise")
            .apply(|x, _| one(x[0].exp()?))
            .cases(|| cases::general(16)),
        unary(
            "log",
            "log x entrywise (x > 0 real; x ≠ 0 complex, principal branch)",
        )
        .apply(|x, _| one(x[0].log()?))
        .cases(|| {
            let mut v = cases::positive(17, 0.2, 5.0);
            v.push(Case::new("complex 2×3", vec![complex_matrix(2, 3, 18)]));
            v
        }),
        unary(
            "sqrt",
            "√x entrywise (x ≥ 0 real; principal branch complex; derivative needs x ≠ 0)",
        )
        .apply(|x, _| one(x[0].sqrt()?))
        .cases(|| {
            let mut v = cases::positive(19, 0.2, 5.0);
            v.push(Case::new("complex 2×3", vec![complex_matrix(2, 3, 20)]));
            v
        }),
        unary("powf", "xᵖ entrywise (x ≥ 0 real unless p is an integer)")
            .param("p", "2.5", "the real exponent")
            .apply(|x, p| one(x[0].powf(p.f64("p")?)?))
            .cases(|| {
                let mut v = cases::positive(21, 0.2, 5.0);
                v.push(
                    Case::new("negative base, p = 3", vec![real_matrix(3, 2, 22)]).param("p", 3),
                );
                v.push(
                    Case::new("complex, p = −1.5", vec![complex_matrix(2, 2, 23)]).param("p", -1.5),
                );
                v
            }),
        unary("tanh", "tanh x entrywise (overflow-safe for complex x)")
            .apply(|x, _| one(x[0].tanh()?))
            .cases(tanh_cases),
        unary("sigmoid", "1/(1 + e⁻ˣ) entrywise (overflow-safe)")
            .apply(|x, _| one(x[0].sigmoid()?))
            .cases(sigmoid_cases),
        unary("relu", "max(x, 0) entrywise (real; zero subgradient at 0)")
            .apply(|x, _| one(x[0].relu()?))
            .cases(|| cases::real(24)),
        unary("abs", "|x| entrywise (real output; zero subgradient at 0)")
            .apply(|x, _| one(x[0].abs()?))
            .cases(|| cases::general(25)),
        unary("softplus", "log(1 + eˣ) entrywise (real)")
            .apply(|x, _| one(x[0].softplus()?))
            .cases(|| cases::real(26)),
        unary(
            "sum",
            "Σ X over all entries (1×1), rows (1×n) or columns (m×1)",
        )
        .param("axis", "all", "all | rows | cols")
        .apply(|x, p| one(x[0].sum(axis(p)?)?))
        .cases(|| {
            let mut v = cases::general(27);
            v.push(
                Case::new("down the rows, 3×4", vec![real_matrix(3, 4, 28)]).param("axis", "rows"),
            );
            v.push(
                Case::new(
                    "along the columns, complex 3×4",
                    vec![complex_matrix(3, 4, 29)],
                )
                .param("axis", "cols"),
            );
            v
        }),
        unary(
            "mean",
            "mean of X over all entries, rows or columns (an empty mean is an error)",
        )
        .param("axis", "all", "all | rows | cols")
        .apply(|x, p| one(x[0].mean(axis(p)?)?))
        .cases(|| {
            let mut v: Vec<Case> = cases::general(30)
                .into_iter()
                .filter(|c| !c.label.starts_with("empty"))
                .collect();
            v.push(Case::new("rows, 3×4", vec![real_matrix(3, 4, 31)]).param("axis", "rows"));
            v
        }),
        unary("trace", "Σᵢ Xᵢᵢ over i < min(m, n) → 1×1")
            .apply(|x, _| one(x[0].trace()?))
            .cases(|| cases::general(32)),
        binary("inner", "⟨A, B⟩ = Σ conj(A) ∘ B → 1×1")
            .apply(|x, _| one(x[0].inner(x[1])?))
            .cases(|| cases::pairs(33)),
        binary("dot_real", "Re⟨A, B⟩ → 1×1 real")
            .apply(|x, _| one(x[0].dot_real(x[1])?))
            .cases(|| cases::pairs(34)),
        unary("norm", "‖X‖_F → 1×1 real (zero subgradient at X = 0)")
            .apply(|x, _| one(x[0].norm()?))
            .cases(|| {
                let mut v = cases::general(35);
                v.push(Case::new("zero 2×2", vec![Value::zeros(DType::F64, 2, 2)]).first_order());
                v
            }),
        unary("diag", "the main diagonal as a min(m,n)×1 column")
            .apply(|x, _| one(x[0].diag()?))
            .cases(|| cases::general(36)),
        unary(
            "diag_embed",
            "an m×n matrix with X (min(m,n)×1) on its diagonal",
        )
        .param("m", "3", "rows")
        .param("n", "4", "columns")
        .apply(|x, p| one(x[0].diag_embed(p.usize("m")?, p.usize("n")?)?))
        .cases(|| structure_cases(37, &[(3, 1)])),
        unary("reshape", "X reshaped to m×n in column-major order")
            .param("m", "2", "rows")
            .param("n", "6", "columns")
            .apply(|x, p| one(x[0].reshape(p.usize("m")?, p.usize("n")?)?))
            .cases(|| structure_cases(38, &[(3, 4), (4, 3)])),
        unary("vec", "column-major vectorisation (mn×1)")
            .apply(|x, _| one(x[0].vec()?))
            .cases(|| cases::general(39)),
        unary(
            "slice",
            "X[rows, cols] with ranges START:END (empty ranges give empty matrices)",
        )
        .param("rows", "1:3", "row range START:END")
        .param("cols", "0:2", "column range START:END")
        .apply(|x, p| one(x[0].slice(range(p, "rows")?, range(p, "cols")?)?))
        .cases(|| {
            let mut v = structure_cases(40, &[(4, 5)]);
            v.push(Case::new("empty range", vec![real_matrix(4, 5, 41)]).param("rows", "2:2"));
            v
        }),
        unary("embed", "X placed at (r0, c0) in an m×n zero matrix")
            .param("m", "4", "rows of the result")
            .param("n", "5", "columns of the result")
            .param("r0", "1", "first row")
            .param("c0", "2", "first column")
            .apply(|x, p| {
                one(x[0].embed(
                    (p.usize("m")?, p.usize("n")?),
                    p.usize("r0")?,
                    p.usize("c0")?,
                )?)
            })
            .cases(|| structure_cases(42, &[(2, 3)])),
        unary("take_rows", "the rows X[idx[0]], X[idx[1]], … (repeats allowed)")
            .param("idx", "2,0,2", "comma-separated row indices")
            .apply(|x, p| one(x[0].take_rows(&indices(p, "idx")?)?))
            .cases(|| {
                vec![
                    Case::new("real 4×3, repeats", vec![real_matrix(4, 3, 93)]),
                    Case::new("complex 3×2", vec![complex_matrix(3, 2, 94)]).param("idx", "1,2"),
                ]
            }),
        unary(
            "scatter_rows",
            "the m-row matrix whose row i sums the rows k of X with idx[k] = i (adjoint of take_rows)",
        )
        .param("idx", "2,0,2", "comma-separated target row of each row of X")
        .param("m", "4", "rows of the result")
        .apply(|x, p| one(x[0].scatter_rows(&indices(p, "idx")?, p.usize("m")?)?))
        .cases(|| {
            vec![
                Case::new("real 3×2, repeats add", vec![real_matrix(3, 2, 95)]),
                Case::new("complex 2×3", vec![complex_matrix(2, 3, 96)]).param("idx", "3,1"),
            ]
        }),
        binary("hcat", "[A B]")
            .apply(|x, _| one(Var::hcat(&[x[0], x[1]])?))
            .cases(|| concat_cases(false)),
        binary("vcat", "[A; B]")
            .apply(|x, _| one(Var::vcat(&[x[0], x[1]])?))
            .cases(|| concat_cases(true)),
        unary("broadcast_to", "X (1×1, 1×n or m×1) repeated to m×n")
            .param("m", "3", "rows")
            .param("n", "4", "columns")
            .apply(|x, p| one(x[0].broadcast_to(p.usize("m")?, p.usize("n")?)?))
            .cases(|| {
                let mut v = structure_cases(43, &[(1, 4), (1, 1)]);
                v.push(Case::new("column 3×1", vec![real_matrix(3, 1, 44)]));
                v
            }),
        unary(
            "tril_scaled",
            "the lower triangle of square X with the diagonal times d",
        )
        .param("d", "0.5", "the diagonal factor")
        .apply(|x, p| one(x[0].tril_scaled(p.f64("d")?)?))
        .cases(|| square_general(45)),
        unary("sym", "(X + Xᴴ)/2 (square X)")
            .apply(|x, _| one(x[0].sym()?))
            .cases(|| square_general(46)),
        unary("inv", "X⁻¹")
            .apply(|x, _| one(x[0].inv()?))
            .cases(|| cases::invertible(47)),
        binary(
            "solve",
            "A⁻¹ B (or A⁻ᴴ B with form=adjoint), without forming the inverse",
        )
        .param("form", "plain", "plain | adjoint")
        .apply(|x, p| one(x[0].solve_form(form(p, "form")?, x[1])?))
        .cases(|| {
            let mut v = solve_cases();
            v.push(
                Case::new(
                    "A⁻ᴴ B, complex 3×3, 3×2",
                    vec![
                        cases::shifted(DType::C64, 3, 3.0, 48),
                        complex_matrix(3, 2, 49),
                    ],
                )
                .param("form", "adjoint"),
            );
            v
        }),
        unary(
            "det",
            "det X → 1×1 (differentiable at singular X: the gradient is adj(X)ᴴ·ȳ)",
        )
        .apply(|x, _| one(x[0].det()?))
        .cases(det_cases),
        unary(
            "adjugate",
            "adj(X) = det(X) X⁻¹, defined at singular X (SVD, no division)",
        )
        .apply(|x, _| one(x[0].adjugate()?))
        .cases(adjugate_cases),
        unary("logdet", "log|det X| → 1×1 real (nonsingular X)")
            .apply(|x, _| one(x[0].logdet()?))
            .cases(|| cases::invertible(51)),
        OpSpec::new(
            "cholesky",
            "L with sym(X) = L Lᴴ (X Hermitian positive definite)",
        )
        .input_in("X", Domain::Hermitian)
        .apply(|x, _| one(x[0].cholesky()?))
        .cases(spd_hermitian_cases),
        OpSpec::new(
            "logdet_spd",
            "log det X through Cholesky (X Hermitian positive definite) → 1×1 real",
        )
        .input_in("X", Domain::Hermitian)
        .apply(|x, _| one(x[0].logdet_spd()?))
        .cases(spd_hermitian_cases),
    ]
}
