//! The op registry behind `matgrad check` (and later `vjp`/`jvp`/`ops`): every op with its
//! arity, a one-line meaning, how to apply it to Vars, and the cases the checker sweeps.

use matgrad_engine::check::Tolerance;
use matgrad_engine::testing::{
    complex_matrix, hermitian_from_seed, positive_matrix, real_matrix, spd_from_seed,
    symmetric_from_seed, Spectrum,
};
use matgrad_engine::{Axis, EngineError, Result, Value, Var};
use matgrad_layers::{ncut_projector, o2p};
use matgrad_spectral::{
    eigh_projector, eigvals, eigvalsh, expm, expm_sym, logm, logm_sym, powm_sym, sqrtm, sqrtm_sym,
    svdvals, Which,
};

/// One input configuration for the checker.
pub struct Case {
    /// Short description ("real 3×4", "complex 2×2", …).
    pub label: String,
    /// The inputs.
    pub inputs: Vec<Value>,
    /// Tolerance preset for this case.
    pub tolerance: Tolerance,
}

/// A registered op.
/// A named parameter of an op.
pub struct ParamSpec {
    /// Name used in `--param NAME=VALUE`.
    pub name: &'static str,
    /// Default value (used by `check`).
    pub default: &'static str,
    /// Meaning.
    pub meaning: &'static str,
}

const NO_PARAMS: &[ParamSpec] = &[];

/// Parameter values given on the command line, validated against an op's specs.
pub struct Params {
    op: &'static str,
    values: std::collections::BTreeMap<&'static str, String>,
}

impl Params {
    /// Defaults overridden by `given` (`NAME=VALUE` strings).
    ///
    /// # Errors
    /// Malformed pair; a name the op does not take.
    pub fn parse(op: &OpEntry, given: &[String]) -> Result<Params> {
        let mut values: std::collections::BTreeMap<&'static str, String> = op
            .params
            .iter()
            .map(|p| (p.name, p.default.to_string()))
            .collect();
        for g in given {
            let Some((k, v)) = g.split_once('=') else {
                return Err(EngineError::InvalidArgument {
                    op: op.name,
                    message: format!("parameter {g:?} is not NAME=VALUE"),
                });
            };
            let Some(spec) = op.params.iter().find(|p| p.name == k.trim()) else {
                let known: Vec<&str> = op.params.iter().map(|p| p.name).collect();
                return Err(EngineError::InvalidArgument {
                    op: op.name,
                    message: format!(
                        "unknown parameter {k:?}; this op takes {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            };
            values.insert(spec.name, v.trim().to_string());
        }
        Ok(Params {
            op: op.name,
            values,
        })
    }

    fn get(&self, name: &str) -> Result<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or(EngineError::InvalidArgument {
                op: self.op,
                message: format!("missing parameter {name}"),
            })
    }

    /// A real parameter.
    ///
    /// # Errors
    /// Not a finite number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        let v = self.get(name)?;
        v.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| EngineError::InvalidArgument {
                op: self.op,
                message: format!("parameter {name}={v} is not a finite number"),
            })
    }

    /// A count parameter.
    ///
    /// # Errors
    /// Not a nonnegative integer.
    pub fn usize(&self, name: &str) -> Result<usize> {
        let v = self.get(name)?;
        v.parse::<usize>()
            .map_err(|_| EngineError::InvalidArgument {
                op: self.op,
                message: format!("parameter {name}={v} is not a nonnegative integer"),
            })
    }

    /// `smallest` or `largest`.
    ///
    /// # Errors
    /// Anything else.
    pub fn which(&self, name: &str) -> Result<Which> {
        match self.get(name)? {
            "smallest" => Ok(Which::Smallest),
            "largest" => Ok(Which::Largest),
            v => Err(EngineError::InvalidArgument {
                op: self.op,
                message: format!("parameter {name}={v} must be smallest or largest"),
            }),
        }
    }
}

/// A registered op.
pub struct OpEntry {
    /// Name used on the command line.
    pub name: &'static str,
    /// Number of matrix inputs.
    pub arity: usize,
    /// Exact semantics.
    pub summary: &'static str,
    /// Named parameters.
    pub params: &'static [ParamSpec],
    /// Builds the op on the tape.
    pub apply: for<'t> fn(&[Var<'t>], &Params) -> Result<Var<'t>>,
    /// Cases for `check`.
    pub cases: fn() -> Vec<Case>,
}

fn case(label: impl Into<String>, inputs: Vec<Value>) -> Case {
    Case {
        label: label.into(),
        inputs,
        tolerance: Tolerance::STRICT,
    }
}

const SHAPES: [(usize, usize); 3] = [(1, 1), (2, 3), (4, 4)];

fn general_unary() -> Vec<Case> {
    let mut v: Vec<Case> = SHAPES
        .iter()
        .map(|&(m, n)| case(format!("real {m}×{n}"), vec![real_matrix(m, n, 1)]))
        .collect();
    v.extend(
        SHAPES
            .iter()
            .map(|&(m, n)| case(format!("complex {m}×{n}"), vec![complex_matrix(m, n, 2)])),
    );
    v
}

fn real_unary() -> Vec<Case> {
    SHAPES
        .iter()
        .map(|&(m, n)| case(format!("real {m}×{n}"), vec![real_matrix(m, n, 3)]))
        .collect()
}

fn positive_unary() -> Vec<Case> {
    SHAPES
        .iter()
        .map(|&(m, n)| {
            case(
                format!("positive {m}×{n}"),
                vec![positive_matrix(m, n, 0.5, 2.0, 4)],
            )
        })
        .collect()
}

fn same_shape_binary() -> Vec<Case> {
    let mut v: Vec<Case> = SHAPES
        .iter()
        .map(|&(m, n)| {
            case(
                format!("real {m}×{n}"),
                vec![real_matrix(m, n, 5), positive_matrix(m, n, 0.5, 2.0, 6)],
            )
        })
        .collect();
    v.extend(SHAPES.iter().map(|&(m, n)| {
        case(
            format!("complex {m}×{n}"),
            vec![complex_matrix(m, n, 7), complex_matrix(m, n, 8)],
        )
    }));
    v
}

fn matmul_cases() -> Vec<Case> {
    vec![
        case(
            "real 1×1·1×1",
            vec![real_matrix(1, 1, 9), real_matrix(1, 1, 10)],
        ),
        case(
            "real 3×4·4×2",
            vec![real_matrix(3, 4, 11), real_matrix(4, 2, 12)],
        ),
        case(
            "complex 2×3·3×5",
            vec![complex_matrix(2, 3, 13), complex_matrix(3, 5, 14)],
        ),
    ]
}

fn shifted(make: fn(usize, usize, u64) -> Value, n: usize, seed: u64) -> Value {
    let a = make(n, n, seed);
    a.axpy(n as f64, &Value::identity(a.dtype(), n))
        .expect("same shape")
}

fn square_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for n in [1, 3, 8] {
        v.push(case(
            format!("real {n}×{n}"),
            vec![shifted(real_matrix, n, 15)],
        ));
    }
    v.push(case("complex 3×3", vec![shifted(complex_matrix, 3, 16)]));
    v
}

fn solve_cases() -> Vec<Case> {
    vec![
        case(
            "real 1×1, 1×2",
            vec![shifted(real_matrix, 1, 17), real_matrix(1, 2, 18)],
        ),
        case(
            "real 4×4, 4×3",
            vec![shifted(real_matrix, 4, 19), real_matrix(4, 3, 20)],
        ),
        case(
            "complex 3×3, 3×2",
            vec![shifted(complex_matrix, 3, 21), complex_matrix(3, 2, 22)],
        ),
    ]
}

fn spd_cases() -> Vec<Case> {
    let mut v: Vec<Case> = [1, 3, 8]
        .iter()
        .map(|&n| {
            case(
                format!("SPD {n}×{n}, cond 10"),
                vec![spd_from_seed(n, 10.0, 23)],
            )
        })
        .collect();
    v.push(Case {
        label: "SPD 4×4, cond 1e4".into(),
        inputs: vec![spd_from_seed(4, 1e4, 24)],
        tolerance: Tolerance::BALANCED,
    });
    v.push(case(
        "Hermitian PD 3×3",
        vec![hermitian_from_seed(
            &Spectrum::log_spaced(3, 1.0, 10.0).values(),
            25,
        )],
    ));
    v
}

fn kron_cases() -> Vec<Case> {
    vec![
        case(
            "real 2×3 ⊗ 3×2",
            vec![real_matrix(2, 3, 26), real_matrix(3, 2, 27)],
        ),
        case(
            "complex 2×2 ⊗ 1×2",
            vec![complex_matrix(2, 2, 28), complex_matrix(1, 2, 29)],
        ),
    ]
}

/// Spectra the spectral ops are swept over: distinct, exact ties, near-ties from 1e-4 to
/// 1e-12, a cluster, and a complex Hermitian matrix with a tie.
fn spectral_cases(positive: bool) -> Vec<Case> {
    let shift = if positive { 0.0 } else { -1.5 };
    let sp = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x + shift).collect() };
    let mut v = vec![
        case("1×1", vec![symmetric_from_seed(&sp(vec![2.0]), 30)]),
        case(
            "distinct 4×4",
            vec![symmetric_from_seed(
                &sp(Spectrum::log_spaced(4, 0.5, 4.0).values()),
                31,
            )],
        ),
        case(
            "identity 3×3 (all tied)",
            vec![symmetric_from_seed(&sp(vec![1.0; 3]), 32)],
        ),
        case(
            "ties 1,1,2,2",
            vec![symmetric_from_seed(&sp(vec![1.0, 1.0, 2.0, 2.0]), 33)],
        ),
        case(
            "cluster 1, 1+1e-3, 1+2e-3, 3",
            vec![symmetric_from_seed(
                &sp(Spectrum::clusters(3, 3, 1e-3)
                    .values()
                    .into_iter()
                    .chain([3.0])
                    .collect()),
                34,
            )],
        ),
        case(
            "complex Hermitian, tie",
            vec![hermitian_from_seed(&sp(vec![0.5, 0.5, 2.0]), 35)],
        ),
    ];
    for gap in [1e-4, 1e-8, 1e-12] {
        v.push(case(
            format!("near tie {gap:.0e}"),
            vec![symmetric_from_seed(&sp(vec![0.7, 1.0, 1.0 + gap, 2.0]), 36)],
        ));
    }
    v
}

fn spd_spectral_cases() -> Vec<Case> {
    spectral_cases(true)
}

fn any_spectral_cases() -> Vec<Case> {
    spectral_cases(false)
}

fn projector_cases() -> Vec<Case> {
    vec![
        case(
            "distinct 4×4",
            vec![symmetric_from_seed(&[1.0, 2.0, 3.0, 4.0], 40)],
        ),
        case(
            "tie in kept block (1,1 | 2)",
            vec![symmetric_from_seed(&[1.0, 1.0, 2.0], 41)],
        ),
        case(
            "tie in discarded block (1 | 3,3,3) + 1",
            vec![symmetric_from_seed(&[0.0, 1.0, 3.0, 3.0, 3.0], 42)],
        ),
        case(
            "complex Hermitian, tie kept",
            vec![hermitian_from_seed(&[0.5, 0.5, 2.0, 4.0], 43)],
        ),
    ]
}

fn eigvalsh_cases() -> Vec<Case> {
    vec![
        case("1×1", vec![symmetric_from_seed(&[2.0], 44)]),
        case(
            "distinct 4×4",
            vec![symmetric_from_seed(&[-1.0, 0.5, 2.0, 3.0], 45)],
        ),
        case(
            "complex Hermitian distinct",
            vec![hermitian_from_seed(&[0.5, 1.0, 2.0], 46)],
        ),
    ]
}

fn svd_cases() -> Vec<Case> {
    vec![
        case("real 1×1", vec![real_matrix(1, 1, 50)]),
        case("real 4×3", vec![real_matrix(4, 3, 51)]),
        case("real 2×5", vec![real_matrix(2, 5, 52)]),
        case("complex 3×3", vec![complex_matrix(3, 3, 53)]),
        case("complex 4×2", vec![complex_matrix(4, 2, 54)]),
    ]
}

fn general_cases() -> Vec<Case> {
    let near = |make: fn(usize, usize, u64) -> Value, n: usize, seed: u64| {
        let a = make(n, n, seed);
        Value::zeros(a.dtype(), n, n)
            .axpy(0.4, &a)
            .unwrap()
            .axpy(2.0, &Value::identity(a.dtype(), n))
            .unwrap()
    };
    vec![
        case("real 1×1", vec![near(real_matrix, 1, 60)]),
        case("real 3×3", vec![near(real_matrix, 3, 61)]),
        case("complex 3×3", vec![near(complex_matrix, 3, 62)]),
        case(
            "Jordan block 3×3 (defective)",
            vec![Value::Real(faer::mat![
                [2.0, 1.0, 0.0],
                [0.0, 2.0, 1.0],
                [0.0, 0.0, 2.0]
            ])],
        ),
    ]
}

fn o2p_cases() -> Vec<Case> {
    vec![
        case("real 20×3", vec![real_matrix(20, 3, 70)]),
        case(
            "orthogonal features (tied covariance)",
            vec![Value::Real(faer::Mat::from_fn(4, 2, |i, j| {
                if i == j {
                    2.0
                } else {
                    0.0
                }
            }))],
        ),
    ]
}

fn ncut_cases() -> Vec<Case> {
    vec![
        case("positive 6×2", vec![positive_matrix(6, 2, 0.1, 1.0, 71)]),
        case("positive 9×3", vec![positive_matrix(9, 3, 0.1, 1.0, 72)]),
    ]
}

fn eig_cases() -> Vec<Case> {
    vec![
        case("real 1×1", vec![real_matrix(1, 1, 80)]),
        case("real 3×3", vec![real_matrix(3, 3, 81)]),
        case("complex 3×3", vec![complex_matrix(3, 3, 82)]),
    ]
}

/// Every registered op.
pub fn registry() -> Vec<OpEntry> {
    vec![
        OpEntry {
            name: "add",
            arity: 2, params: NO_PARAMS,
            summary: "A + B",
            apply: |x, _p| x[0].add(x[1]),
            cases: same_shape_binary,
        },
        OpEntry {
            name: "sub",
            arity: 2, params: NO_PARAMS,
            summary: "A − B",
            apply: |x, _p| x[0].sub(x[1]),
            cases: same_shape_binary,
        },
        OpEntry {
            name: "mul",
            arity: 2, params: NO_PARAMS,
            summary: "A ∘ B (Hadamard)",
            apply: |x, _p| x[0].mul(x[1]),
            cases: same_shape_binary,
        },
        OpEntry {
            name: "div",
            arity: 2, params: NO_PARAMS,
            summary: "A ⊘ B (entrywise)",
            apply: |x, _p| x[0].div(x[1]),
            cases: same_shape_binary,
        },
        OpEntry {
            name: "matmul",
            arity: 2, params: NO_PARAMS,
            summary: "A B",
            apply: |x, _p| x[0].matmul(x[1]),
            cases: matmul_cases,
        },
        OpEntry {
            name: "kron",
            arity: 2, params: NO_PARAMS,
            summary: "A ⊗ B",
            apply: |x, _p| x[0].kron(x[1]),
            cases: kron_cases,
        },
        OpEntry {
            name: "transpose",
            arity: 1, params: NO_PARAMS,
            summary: "Aᵀ",
            apply: |x, _p| x[0].transpose(),
            cases: general_unary,
        },
        OpEntry {
            name: "adjoint",
            arity: 1, params: NO_PARAMS,
            summary: "Aᴴ",
            apply: |x, _p| x[0].adjoint(),
            cases: general_unary,
        },
        OpEntry {
            name: "trace",
            arity: 1, params: NO_PARAMS,
            summary: "tr A → 1×1",
            apply: |x, _p| x[0].trace(),
            cases: square_cases,
        },
        OpEntry {
            name: "sum",
            arity: 1, params: NO_PARAMS,
            summary: "Σ A → 1×1",
            apply: |x, _p| x[0].sum(Axis::All),
            cases: general_unary,
        },
        OpEntry {
            name: "norm",
            arity: 1, params: NO_PARAMS,
            summary: "‖A‖_F → 1×1 real",
            apply: |x, _p| x[0].norm(),
            cases: general_unary,
        },
        OpEntry {
            name: "exp",
            arity: 1, params: NO_PARAMS,
            summary: "eᴬ entrywise",
            apply: |x, _p| x[0].exp(),
            cases: general_unary,
        },
        OpEntry {
            name: "log",
            arity: 1, params: NO_PARAMS,
            summary: "log A entrywise (A > 0)",
            apply: |x, _p| x[0].log(),
            cases: positive_unary,
        },
        OpEntry {
            name: "sqrt",
            arity: 1, params: NO_PARAMS,
            summary: "√A entrywise (A ≥ 0)",
            apply: |x, _p| x[0].sqrt(),
            cases: positive_unary,
        },
        OpEntry {
            name: "tanh",
            arity: 1, params: NO_PARAMS,
            summary: "tanh A entrywise",
            apply: |x, _p| x[0].tanh(),
            cases: real_unary,
        },
        OpEntry {
            name: "sigmoid",
            arity: 1, params: NO_PARAMS,
            summary: "1/(1+e⁻ᴬ) entrywise",
            apply: |x, _p| x[0].sigmoid(),
            cases: real_unary,
        },
        OpEntry {
            name: "softplus",
            arity: 1, params: NO_PARAMS,
            summary: "log(1+eᴬ) entrywise",
            apply: |x, _p| x[0].softplus(),
            cases: real_unary,
        },
        OpEntry {
            name: "relu",
            arity: 1, params: NO_PARAMS,
            summary: "max(A, 0) entrywise",
            apply: |x, _p| x[0].relu(),
            cases: real_unary,
        },
        OpEntry {
            name: "abs",
            arity: 1, params: NO_PARAMS,
            summary: "|A| entrywise",
            apply: |x, _p| x[0].abs(),
            cases: general_unary,
        },
        OpEntry {
            name: "inv",
            arity: 1, params: NO_PARAMS,
            summary: "A⁻¹",
            apply: |x, _p| x[0].inv(),
            cases: square_cases,
        },
        OpEntry {
            name: "solve",
            arity: 2, params: NO_PARAMS,
            summary: "A⁻¹ B",
            apply: |x, _p| x[0].solve(x[1]),
            cases: solve_cases,
        },
        OpEntry {
            name: "det",
            arity: 1, params: NO_PARAMS,
            summary: "det A → 1×1",
            apply: |x, _p| x[0].det(),
            cases: square_cases,
        },
        OpEntry {
            name: "logdet",
            arity: 1, params: NO_PARAMS,
            summary: "log|det A| → 1×1 real",
            apply: |x, _p| x[0].logdet(),
            cases: square_cases,
        },
        OpEntry {
            name: "logm_sym",
            arity: 1, params: NO_PARAMS,
            summary: "principal log of sym(A), A symmetric/Hermitian positive definite (asymmetry ≤ 1e-10 relative)",
            apply: |x, _p| logm_sym(x[0].sym()?),
            cases: spd_spectral_cases,
        },
        OpEntry {
            name: "sqrtm_sym",
            arity: 1, params: NO_PARAMS,
            summary: "principal square root of sym(A), A positive semidefinite",
            apply: |x, _p| sqrtm_sym(x[0].sym()?),
            cases: spd_spectral_cases,
        },
        OpEntry {
            name: "expm_sym",
            arity: 1, params: NO_PARAMS,
            summary: "exponential of sym(A)",
            apply: |x, _p| expm_sym(x[0].sym()?),
            cases: any_spectral_cases,
        },
        OpEntry {
            name: "powm_sym",
            arity: 1, params: &[ParamSpec { name: "p", default: "1.5", meaning: "the real exponent" }],
            summary: "sym(A)^p (positive definite A unless p is a nonnegative integer)",
            apply: |x, p| powm_sym(x[0].sym()?, p.f64("p")?),
            cases: spd_spectral_cases,
        },
        OpEntry {
            name: "eigvalsh",
            arity: 1, params: NO_PARAMS,
            summary: "eigenvalues of sym(A), ascending, n×1",
            apply: |x, _p| eigvalsh(x[0].sym()?),
            cases: eigvalsh_cases,
        },
        OpEntry {
            name: "expm",
            arity: 1, params: NO_PARAMS,
            summary: "exponential of a general square A",
            apply: |x, _p| expm(x[0]),
            cases: general_cases,
        },
        OpEntry {
            name: "logm",
            arity: 1, params: NO_PARAMS,
            summary: "principal log of a general square A (no eigenvalue on the closed negative real axis)",
            apply: |x, _p| logm(x[0]),
            cases: general_cases,
        },
        OpEntry {
            name: "sqrtm",
            arity: 1, params: NO_PARAMS,
            summary: "principal square root of a general square A (no eigenvalue on the closed negative real axis)",
            apply: |x, _p| sqrtm(x[0]),
            cases: general_cases,
        },
        OpEntry {
            name: "eigvals",
            arity: 1,
            params: NO_PARAMS,
            summary: "eigenvalues of a general square A (n×1 complex, ascending real part, then imaginary part)",
            apply: |x, _p| eigvals(x[0]),
            cases: eig_cases,
        },
        OpEntry {
            name: "svdvals",
            arity: 1, params: NO_PARAMS,
            summary: "singular values of A (any m×n), descending, min(m,n)×1",
            apply: |x, _p| svdvals(x[0]),
            cases: svd_cases,
        },
        OpEntry {
            name: "eigh_projector",
            arity: 1, params: &[
                ParamSpec { name: "k", default: "2", meaning: "dimension of the eigenspace (0..=n)" },
                ParamSpec { name: "which", default: "smallest", meaning: "smallest | largest: which end of the spectrum" },
            ],
            summary: "orthogonal projector onto the eigenspace of the k smallest (or largest) eigenvalues of sym(A)",
            apply: |x, p| eigh_projector(x[0].sym()?, p.usize("k")?, p.which("which")?),
            cases: projector_cases,
        },
        OpEntry {
            name: "o2p",
            arity: 1,
            params: &[ParamSpec { name: "eps", default: "1e-3", meaning: "ridge ε > 0 added to the covariance" }],
            summary: "F (m×d) ↦ logm_sym(FᵀF/m + eps·I)",
            apply: |x, p| o2p(x[0], p.f64("eps")?),
            cases: o2p_cases,
        },
        OpEntry {
            name: "ncut_projector",
            arity: 1,
            params: NO_PARAMS,
            summary: "F (n×d, nonnegative) ↦ Π = Z(ZᵀZ)⁻¹Zᵀ with Z = D^{-1/2}F, D = diag(FFᵀ1)",
            apply: |x, _p| ncut_projector(x[0]),
            cases: ncut_cases,
        },
        OpEntry {
            name: "cholesky",
            arity: 1, params: NO_PARAMS,
            summary: "L with sym(A) = L Lᴴ (A Hermitian positive definite)",
            apply: |x, _p| x[0].sym()?.cholesky(),
            cases: spd_cases,
        },
    ]
}
