//! The registration of every spectral op (see [`matgrad_engine::spec`]). Ops on Hermitian
//! matrices read `sym(X) = (X + Xᴴ)/2` (any asymmetry is accepted, and the gradient is
//! that of `X ↦ f(sym X)`, a Hermitian matrix); their inputs have the Hermitian domain, so
//! the checker draws Hermitian directions. Multi-output ops carry probe losses invariant
//! to their gauges, and their cases name the probes that must be refused (both modes) at
//! ties and gauges.

use std::rc::Rc;

use matgrad_engine::cases::{self, Gaps, Spectra};
use matgrad_engine::check::Tolerance;
use matgrad_engine::spec::{Case, OpSpec, Params};
use matgrad_engine::testing::{
    complex_matrix, hermitian_from_seed, orthogonal_from_seed, real_matrix, symmetric_from_seed,
};
use matgrad_engine::{Axis, DType, Domain, Form, Result, Value, Var};

use crate::{
    eig_with, eigh_projector, eigh_with, eigvals, eigvalsh, expm, expm_sym, logm, logm_sym,
    matrix_function_sym, matrix_function_sym_batched, orthogonal_complement, powm_sym,
    range_projector, sqrtm, sqrtm_sym, svd_full, svd_with, svdvals, DegeneracyPolicy, EighOptions,
    SymFn, Which, EIG_GAP_RTOL,
};

fn one(v: Var<'_>) -> Result<Vec<Var<'_>>> {
    Ok(vec![v])
}

fn policy(p: &Params, gap_rtol: f64) -> Result<EighOptions> {
    let policy = match p.choice("policy", &["error", "well_defined", "broaden"])? {
        "error" => DegeneracyPolicy::Error,
        "well_defined" => DegeneracyPolicy::WellDefinedPart,
        _ => DegeneracyPolicy::Broaden(p.f64("eps")?),
    };
    Ok(EighOptions {
        policy,
        gap_rtol,
        ..EighOptions::default()
    })
}

fn sym_fn(p: &Params) -> Result<SymFn> {
    Ok(
        match p.choice("f", &["log", "exp", "sqrt", "pow", "sin", "cos", "cube"])? {
            "log" => SymFn::Log,
            "exp" => SymFn::Exp,
            "sqrt" => SymFn::Sqrt,
            "pow" => SymFn::Pow(p.f64("p")?),
            "sin" => SymFn::Custom {
                name: "matrix_function_sym(sin)",
                f: Rc::new(f64::sin),
                df: Rc::new(f64::cos),
                d2f: Some(Rc::new(|x: f64| -x.sin())),
            },
            "cos" => SymFn::Custom {
                name: "matrix_function_sym(cos)",
                f: Rc::new(f64::cos),
                df: Rc::new(|x: f64| -x.sin()),
                d2f: Some(Rc::new(|x: f64| -x.cos())),
            },
            _ => SymFn::Custom {
                name: "matrix_function_sym(cube)",
                f: Rc::new(|x: f64| x * x * x),
                df: Rc::new(|x: f64| 3.0 * x * x),
                d2f: Some(Rc::new(|x: f64| 6.0 * x)),
            },
        },
    )
}

/// Fixed weights as a constant of `like`'s shape (real). Not of the form `aᵢ + bⱼ`: for a
/// unitary U, `Σ (aᵢ + bⱼ)|Uᵢⱼ|²` is constant and would make a probe vacuous.
fn weights<'t>(like: Var<'t>) -> Result<Var<'t>> {
    let (m, n) = like.shape();
    like.tape()
        .constant(Value::Real(faer::Mat::from_fn(m, n, |i, j| {
            1.0 + 0.37 * (((i + 1) * (j + 2)) % 5) as f64 + 0.11 * (i * i % 3) as f64
        })))
}

/// `Σ w ∘ |X|²`: invariant to the sign and phase of each column, not to a turn mixing them.
fn abs2<'t>(x: Var<'t>) -> Result<Var<'t>> {
    let a = x.abs()?;
    a.mul(a)?.mul(weights(a)?)?.sum(Axis::All)
}

/// `U diag(g) Vᴴ` with `g` real (a Var, k×1), in U's dtype.
fn udv<'t>(u: Var<'t>, g: Var<'t>, v: Var<'t>) -> Result<Var<'t>> {
    let k = g.shape().0;
    let g = if u.dtype() == DType::C64 {
        g.to_complex()?
    } else {
        g
    };
    u.matmul(g.diag_embed(k, k)?)?
        .matmul_forms(Form::Plain, v, Form::Adjoint)
}

/// `Σ w ∘ Re(X)` for a real or complex X (a generic linear probe of a matrix output).
fn weighted_real<'t>(x: Var<'t>) -> Result<Var<'t>> {
    let r = if x.dtype() == DType::C64 {
        x.real()?
    } else {
        x
    };
    r.mul(weights(r)?)?.sum(Axis::All)
}

fn sym_function_cases(kind: Spectra, seed: u64) -> Vec<Case> {
    cases::hermitian(kind, seed)
        .into_iter()
        .map(|h| h.case)
        .collect()
}

fn eigh_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for h in cases::hermitian(Spectra::Any, 300) {
        let complex = h.case.inputs[0].dtype() == DType::C64;
        let c = h.case.clone();
        match h.gaps {
            Gaps::Tie => {
                // at a tie: the sorted values and any eigenvector use are refused by default;
                // symmetric functions of the values pass (first order: second derivatives of
                // tied eigenvalues do not exist)
                v.push(c.clone().first_order().probes(&["sum_cubes"]).refuses(&[
                    "values",
                    "reconstruct",
                    "abs2",
                ]));
                // well-defined part: basis-invariant uses of the vectors pass, the rest are
                // refused (the top eigenvector's projector is invariant unless it is tied)
                let label = format!("{}, policy well_defined", c.label);
                let mut w = c.first_order().param("policy", "well_defined");
                w.label = label;
                v.push(if h.top_tied() {
                    w.probes(&["sum_cubes"]).refuses(&["top_projector", "abs2"])
                } else {
                    w.probes(&["top_projector"]).refuses(&["abs2"])
                });
            }
            // Near a tie the eigenvectors move by O(1/gap): only the symmetric function of
            // the values (whose gradient involves no 1/gap) is within reach of finite
            // differences; the rest is what matrix functions are for.
            Gaps::NearTie => v.push(c.probes(&["sum_cubes"])),
            Gaps::Distinct if complex => v.push(
                c.probes(&[
                    "values",
                    "sum_cubes",
                    "reconstruct",
                    "abs2",
                    "top_projector",
                ])
                .refuses(&["raw_vectors"]),
            ),
            Gaps::Distinct => v.push(c.probes(&[
                "values",
                "sum_cubes",
                "reconstruct",
                "abs2",
                "top_projector",
            ])),
        }
    }
    v
}

fn projector_cases() -> Vec<Case> {
    vec![
        Case::new(
            "distinct 4×4",
            vec![symmetric_from_seed(&[1.0, 2.0, 3.0, 4.0], 40)],
        ),
        Case::new(
            "tie in the kept block (3, 3 | 5)",
            vec![symmetric_from_seed(&[3.0, 3.0, 5.0], 41)],
        ),
        Case::new(
            "ties in the discarded block (−2 | 3, 3, 3), k=1",
            vec![symmetric_from_seed(&[-2.0, 3.0, 3.0, 3.0], 42)],
        )
        .param("k", 1),
        Case::new(
            "largest k=2 of (−1, 0.5, 4, 4)",
            vec![symmetric_from_seed(&[-1.0, 0.5, 4.0, 4.0], 43)],
        )
        .param("which", "largest"),
        Case::new(
            "complex Hermitian, tie kept",
            vec![hermitian_from_seed(&[0.5, 0.5, 2.0, 4.0], 44)],
        ),
        Case::new(
            "k = 0 (zero projector)",
            vec![symmetric_from_seed(&[1.0, 2.0], 45)],
        )
        .param("k", 0),
    ]
}

fn svd_cases() -> Vec<Case> {
    let all = &["values", "sum_cubes", "weighted", "abs2_u", "abs2_v", "uvh"];
    let mut v = vec![
        Case::new("real 1×1", vec![real_matrix(1, 1, 50)]).probes(all),
        Case::new("real 4×3", vec![real_matrix(4, 3, 51)]).probes(all),
        Case::new("real 2×5", vec![real_matrix(2, 5, 52)]).probes(all),
        Case::new("complex 3×3", vec![complex_matrix(3, 3, 53)])
            .probes(all)
            .refuses(&["raw_u"]),
        Case::new("complex 4×2", vec![complex_matrix(4, 2, 54)]).probes(all),
    ];
    // an orthogonal matrix: every singular value is 1 (a triple tie)
    let q = Value::Real(orthogonal_from_seed(3, 55));
    v.push(
        Case::new("orthogonal 3×3 (σ = 1, 1, 1)", vec![q.clone()])
            .first_order()
            .probes(&["sum_cubes"])
            .refuses(&["values", "weighted", "abs2_u"]),
    );
    v.push(
        Case::new("orthogonal 3×3, policy well_defined", vec![q])
            .first_order()
            .param("policy", "well_defined")
            .probes(&["uvh"])
            .refuses(&["abs2_u"]),
    );
    // a zero singular value of a rectangle: the singular vectors do not exist
    v.push(
        Case::new(
            "rank-deficient 4×3 (one σ = 0)",
            vec![matgrad_engine::testing::rank_deficient_from_seed(
                4, 3, 2, 56,
            )],
        )
        .first_order()
        .probes(&["sum_cubes"])
        .refuses(&["weighted"]),
    );
    v
}

fn svd_full_cases() -> Vec<Case> {
    vec![
        Case::new("real 4×2", vec![real_matrix(4, 2, 60)])
            .probes(&["values", "usv", "extra_projector"])
            .refuses(&["extra_column"]),
        Case::new("real 2×4", vec![real_matrix(2, 4, 61)]).probes(&[
            "values",
            "usv",
            "extra_projector",
        ]),
        Case::new("complex 3×1", vec![complex_matrix(3, 1, 62)])
            .probes(&["values", "usv", "extra_projector"])
            .refuses(&["extra_column"]),
    ]
}

fn non_normal_with_tie(seed: u64) -> Value {
    let s = real_matrix(3, 3, seed);
    let sm = s.as_real().expect("real");
    let sinv = faer::linalg::solvers::DenseSolveCore::inverse(&sm.as_ref().partial_piv_lu());
    let d = faer::mat![[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.5]];
    Value::Real(sm * &d * &sinv)
}

/// The thin SVD's U: maps a general tall matrix to orthonormal columns.
fn thin_u<'t>(x: &[Var<'t>]) -> Result<Vec<Var<'t>>> {
    let (u, _, _) = crate::svd(x[0])?;
    Ok(vec![u])
}

fn eig_cases() -> Vec<Case> {
    let all = &["values", "sum", "abs2", "weighted"];
    vec![
        Case::new("real 1×1", vec![real_matrix(1, 1, 80)]).probes(all),
        Case::new("real 3×3 (a conjugate pair)", vec![real_matrix(3, 3, 81)]).probes(all),
        Case::new("complex 3×3", vec![complex_matrix(3, 3, 82)])
            .probes(all)
            .refuses(&["raw_vectors"]),
        Case::new(
            "non-normal, eigenvalues 1, 1, 2.5",
            vec![non_normal_with_tie(83)],
        )
        .first_order()
        .probes(&["sum"])
        .refuses(&["values", "abs2"])
        .tol(Tolerance::BALANCED),
    ]
}

fn general_fn_cases() -> Vec<Case> {
    let near = |v: Value, n: usize| {
        Value::zeros(v.dtype(), n, n)
            .axpy(0.4, &v)
            .and_then(|x| x.axpy(2.0, &Value::identity(v.dtype(), n)))
            .expect("same shape")
    };
    vec![
        Case::new("real 1×1", vec![near(real_matrix(1, 1, 90), 1)]),
        Case::new("real 3×3", vec![near(real_matrix(3, 3, 91), 3)]),
        Case::new("complex 3×3", vec![near(complex_matrix(3, 3, 92), 3)]),
        Case::new(
            "Jordan block 3×3 (defective)",
            vec![Value::Real(faer::mat![
                [2.0, 1.0, 0.0],
                [0.0, 2.0, 1.0],
                [0.0, 0.0, 2.0]
            ])],
        ),
        Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]),
    ]
}

fn batched_cases() -> Vec<Case> {
    let stack = |blocks: &[Value]| -> Value {
        let n = blocks[0].ncols();
        let rows = n * blocks.len();
        let get = |k: usize, i: usize, j: usize| blocks[k].as_real().expect("real")[(i, j)];
        Value::Real(faer::Mat::from_fn(rows, n, |r, c| get(r / n, r % n, c)))
    };
    vec![
        Case::new(
            "3 blocks 3×3: distinct, tie at 3, 5·I",
            vec![stack(&[
                symmetric_from_seed(&[0.5, 1.5, 4.0], 95),
                symmetric_from_seed(&[3.0, 3.0, 6.0], 96),
                symmetric_from_seed(&[5.0, 5.0, 5.0], 97),
            ])],
        ),
        Case::new(
            "exp of 2 indefinite blocks with a negative tie",
            vec![stack(&[
                symmetric_from_seed(&[-3.0, -3.0, 1.0], 98),
                symmetric_from_seed(&[-1.0, 0.2, 2.0], 99),
            ])],
        )
        .param("f", "exp"),
        Case::new("no blocks (0×3)", vec![Value::zeros(DType::F64, 0, 3)]),
    ]
}

fn range_cases() -> Vec<Case> {
    vec![
        Case::new("real 5×2", vec![real_matrix(5, 2, 110)]),
        Case::new("complex 4×3", vec![complex_matrix(4, 3, 111)]),
        Case::new("square 3×3 (Π = I)", vec![real_matrix(3, 3, 112)]),
        // second derivatives of W grow like cond³: beyond finite differences at cond 1e4
        Case::new(
            "columns parallel to 1e-4 (cond ≈ 1e4), first order",
            vec![{
                let a = real_matrix(6, 2, 113);
                let m = a.as_real().expect("real");
                Value::Real(faer::Mat::from_fn(6, 2, |i, j| {
                    if j == 1 {
                        m[(i, 0)] * (1.0 + 1e-4 * m[(i, 1)])
                    } else {
                        m[(i, 0)]
                    }
                }))
            }],
        )
        .tol(Tolerance::BALANCED)
        .first_order(),
    ]
}

/// Every spectral op.
pub fn specs() -> Vec<OpSpec> {
    let herm = |name: &'static str, summary: &'static str| {
        OpSpec::new(name, summary).input_in("X", Domain::Hermitian)
    };
    vec![
        herm("logm_sym", "principal log of sym(X), positive definite (Daleckii–Krein, exact at ties)")
            .apply(|x, _| one(logm_sym(x[0].sym()?)?))
            .cases(|| sym_function_cases(Spectra::Positive, 200)),
        herm("sqrtm_sym", "principal square root of sym(X), positive semidefinite")
            .apply(|x, _| one(sqrtm_sym(x[0].sym()?)?))
            .cases(|| sym_function_cases(Spectra::Positive, 210)),
        herm("expm_sym", "exponential of sym(X)")
            .apply(|x, _| one(expm_sym(x[0].sym()?)?))
            .cases(|| sym_function_cases(Spectra::Any, 220)),
        herm("powm_sym", "sym(X)^p (positive definite unless p is a nonnegative integer)")
            .param("p", "1.5", "the real exponent")
            .apply(|x, p| one(powm_sym(x[0].sym()?, p.f64("p")?)?))
            .cases(|| {
                let mut v = sym_function_cases(Spectra::Positive, 230);
                // integer powers at negative ties (issue 7, bug 1)
                for p in [2, 3] {
                    v.extend(sym_function_cases(Spectra::Any, 240 + p).into_iter().map(|mut c| {
                        c.label = format!("p = {p}, {}", c.label);
                        c.param("p", p)
                    }));
                }
                v
            }),
        herm("matrix_function_sym", "f(sym(X)) for a scalar f given with f′, f″ (built-in or user)")
            .param("f", "sin", "log | exp | sqrt | pow | sin | cos | cube (sin, cos, cube go through the user-function path)")
            .param("p", "2", "the exponent when f = pow")
            .apply(|x, p| one(matrix_function_sym(x[0].sym()?, sym_fn(p)?)?))
            .cases(|| {
                let mut v = sym_function_cases(Spectra::Any, 250);
                v.extend(sym_function_cases(Spectra::Any, 260).into_iter().map(|mut c| {
                    c.label = format!("cube, {}", c.label);
                    c.param("f", "cube")
                }));
                v
            }),
        OpSpec::new("matrix_function_sym_batched", "f of each n×n Hermitian block of a (b·n)×n vertical stack, in one node")
            .input_in("X", Domain::General)
            .param("n", "3", "block size")
            .param("f", "log", "log | exp | sqrt | pow")
            .param("p", "2", "the exponent when f = pow")
            .apply(|x, p| {
                let f = match p.choice("f", &["log", "exp", "sqrt", "pow"])? {
                    "log" => SymFn::Log,
                    "exp" => SymFn::Exp,
                    "sqrt" => SymFn::Sqrt,
                    _ => SymFn::Pow(p.f64("p")?),
                };
                let n = p.usize("n")?;
                // each block is read through its Hermitian part, like the single op
                let (rows, _) = x[0].shape();
                let mut blocks = Vec::new();
                for k in 0..rows / n.max(1) {
                    blocks.push(x[0].slice(k * n..(k + 1) * n, 0..n)?.sym()?);
                }
                let stacked = if blocks.is_empty() { x[0] } else { Var::vcat(&blocks)? };
                one(matrix_function_sym_batched(stacked, n, f)?)
            })
            .cases(batched_cases),
        herm("eigh", "eigenvalues (ascending, n×1) and eigenvectors U of sym(X)")
            .output("lambda")
            .output("U")
            .param("policy", "error", "error | well_defined | broaden: what to do at repeated eigenvalues")
            .param("eps", "1e-6", "the broadening ε when policy = broaden")
            .cotangents("λ̄ any at distinct eigenvalues, equal across a tied block; Ū without a component along the eigenvectors' phases (complex) and, under policy=well_defined, along turns of a tied block (under the default policy any Ū at a tie is refused)")
            .apply(|x, p| {
                let (l, u) = eigh_with(x[0].sym()?, policy(p, 1e-10)?)?;
                Ok(vec![l, u])
            })
            .probe("values", "λ", |o| Ok(o[0]))
            .probe("sum_cubes", "Σ λ³ (symmetric in the eigenvalues)", |o| o[0].powf(3.0)?.sum(Axis::All))
            .probe("reconstruct", "U diag(λ² + 1) Uᴴ = sym(X)² + I (basis-invariant)", |o| {
                udv(o[1], o[0].mul(o[0])?.add_scalar(1.0)?, o[1])
            })
            .probe("abs2", "Σ w ∘ |U|² (phase-invariant)", |o| abs2(o[1]))
            .probe("top_projector", "Σ w ∘ Re(u_n u_nᴴ): the top eigenvector's projector", |o| {
                let (m, n) = o[1].shape();
                let un = o[1].slice(0..m, n.saturating_sub(1)..n)?;
                weighted_real(un.matmul_forms(Form::Plain, un, Form::Adjoint)?)
            })
            .probe("raw_vectors", "Σ w ∘ Re U (phase-dependent for complex X)", |o| weighted_real(o[1]))
            .cases(eigh_cases),
        herm("eigvalsh", "eigenvalues of sym(X), ascending, n×1")
            .apply(|x, _| one(eigvalsh(x[0].sym()?)?))
            .probe("values", "λ", |o| Ok(o[0]))
            .probe("sum_cubes", "Σ λ³", |o| o[0].powf(3.0)?.sum(Axis::All))
            .cases(|| {
                cases::hermitian(Spectra::Any, 310)
                    .into_iter()
                    .map(|h| match h.gaps {
                        Gaps::Tie => h.case.first_order().probes(&["sum_cubes"]).refuses(&["values"]),
                        Gaps::NearTie => h.case.probes(&["sum_cubes"]),
                        Gaps::Distinct => h.case,
                    })
                    .collect()
            }),
        herm("eigh_projector", "orthogonal projector onto the eigenspace of the k smallest (or largest) eigenvalues of sym(X)")
            .param("k", "2", "dimension of the eigenspace (0..=n)")
            .param("which", "smallest", "smallest | largest")
            .apply(|x, p| {
                let which = match p.choice("which", &["smallest", "largest"])? {
                    "smallest" => Which::Smallest,
                    _ => Which::Largest,
                };
                one(eigh_projector(x[0].sym()?, p.usize("k")?, which)?)
            })
            .cases(projector_cases),
        OpSpec::new("svd", "thin SVD X = U diag(S) Vᴴ, S descending (min(m,n)×1)")
            .input("X")
            .output("U")
            .output("S")
            .output("V")
            .param("policy", "error", "error | well_defined | broaden: what to do at repeated singular values")
            .param("eps", "1e-6", "the broadening ε when policy = broaden")
            .cotangents("S̄ any at distinct singular values, equal across a tied block; Ū, V̄ without a component along the joint phase of (uᵢ, vᵢ) (complex) and, under policy=well_defined, along joint turns of a tied block; no Ū, V̄ at a zero singular value of a non-square X")
            .apply(|x, p| {
                let (u, s, v) = svd_with(x[0], policy(p, 1e-10)?)?;
                Ok(vec![u, s, v])
            })
            .probe("values", "S", |o| Ok(o[1]))
            .probe("sum_cubes", "Σ S³", |o| o[1].powf(3.0)?.sum(Axis::All))
            .probe("weighted", "U diag(S² + w) Vᴴ, wᵢ = 0.1 + 0.3i (invariant to the joint phase; the golden-value loss)", |o| {
                let k = o[1].shape().0;
                let w = o[1].tape().constant(Value::Real(faer::Mat::from_fn(k, 1, |i, _| 0.1 + 0.3 * i as f64)))?;
                udv(o[0], o[1].mul(o[1])?.add(w)?, o[2])
            })
            .probe("abs2_u", "Σ w ∘ |U|²", |o| abs2(o[0]))
            .probe("abs2_v", "Σ w ∘ |V|²", |o| abs2(o[2]))
            .probe("uvh", "Σ w ∘ Re(U Vᴴ) (invariant to joint turns of tied singular vectors)", |o| {
                weighted_real(o[0].matmul_forms(Form::Plain, o[2], Form::Adjoint)?)
            })
            .probe("raw_u", "Σ w ∘ Re U (phase-dependent for complex X)", |o| weighted_real(o[0]))
            .cases(svd_cases),
        OpSpec::new("svdvals", "singular values of X, descending, min(m,n)×1")
            .input("X")
            .apply(|x, _| one(svdvals(x[0])?))
            .probe("values", "S", |o| Ok(o[0]))
            .probe("top", "σ₁ alone", |o| o[0].slice(0..1, 0..1))
            .probe("sum_cubes", "Σ σ³ (symmetric in the values)", |o| o[0].powf(3.0)?.sum(Axis::All))
            .cases(|| {
                let all = &["values", "top", "sum_cubes"];
                let (q1, q2) = (orthogonal_from_seed(3, 74), orthogonal_from_seed(3, 75));
                let tie_below = Value::Real(faer::Mat::from_fn(3, 3, |i, j| {
                    (0..3).map(|c| q1[(i, c)] * [3.0, 1.0, 1.0][c] * q2[(j, c)]).sum()
                }));
                vec![
                    Case::new("real 4×3", vec![real_matrix(4, 3, 70)]).probes(all),
                    Case::new("complex 2×5", vec![complex_matrix(2, 5, 71)]).probes(all),
                    Case::new("real 1×1", vec![real_matrix(1, 1, 72)]).probes(all),
                    // σ₁'s second derivative exists below a tie: its gradient u₁v₁ᴴ is
                    // invariant to the tied block's joint turn, which the vectors'
                    // well-defined tangent leaves out
                    Case::new("σ = 3, 1, 1: tie below a simple top", vec![tie_below.clone()])
                        .probes(&["top"])
                        .refuses(&["values"]),
                    // a symmetric function of tied values has a gradient, but its second
                    // derivative needs g'' inside the block, which the block-averaged value
                    // tangent does not carry: first order only (second order is refused)
                    Case::new("σ = 3, 1, 1, symmetric loss", vec![tie_below])
                        .first_order()
                        .probes(&["sum_cubes"]),
                    Case::new("orthogonal 3×3 (σ = 1, 1, 1)", vec![Value::Real(orthogonal_from_seed(3, 73))])
                        .first_order()
                        .probes(&["sum_cubes"])
                        .refuses(&["values", "top"]),
                ]
            }),
        OpSpec::new("svd_full", "full SVD: U m×m, S, V n×n (the extra columns complete the thin factors)")
            .input("X")
            .output("U")
            .output("S")
            .output("V")
            .cotangents("as svd, and the extra columns only through basis-invariant quantities (a projector U₂U₂ᴴ)")
            .apply(|x, _| {
                let (u, s, v) = svd_full(x[0])?;
                Ok(vec![u, s, v])
            })
            .probe("values", "S", |o| Ok(o[1]))
            .probe("usv", "thin U diag(S² + 1) thin Vᴴ", |o| {
                let k = o[1].shape().0;
                let (m, n) = (o[0].shape().0, o[2].shape().0);
                udv(o[0].slice(0..m, 0..k)?, o[1].mul(o[1])?.add_scalar(1.0)?, o[2].slice(0..n, 0..k)?)
            })
            .probe("extra_projector", "Σ w ∘ Re(U₂U₂ᴴ) + Σ w ∘ Re(V₂V₂ᴴ) over the extra columns", |o| {
                let k = o[1].shape().0;
                let mut acc = o[1].sum(Axis::All)?.scale(0.0)?;
                for x in [o[0], o[2]] {
                    let (m, c) = x.shape();
                    if c > k {
                        let x2 = x.slice(0..m, k..c)?;
                        acc = acc.add(weighted_real(x2.matmul_forms(Form::Plain, x2, Form::Adjoint)?)?)?;
                    }
                }
                Ok(acc)
            })
            .probe("extra_column", "Σ w ∘ |u_last|² (depends on the basis of the extra columns)", |o| {
                let (m, c) = o[0].shape();
                abs2(o[0].slice(0..m, c - 1..c)?)
            })
            .cases(svd_full_cases),
        OpSpec::new("orthogonal_complement", "an orthonormal basis U₂ of the complement of range(U₁), U₁ m×k with orthonormal columns")
            .input("U1")
            .cotangents("only through basis-invariant quantities of U₂ (a projector U₂U₂ᴴ)")
            .apply(|x, _| one(orthogonal_complement(x[0])?))
            .probe("projector", "Σ w ∘ Re(U₂U₂ᴴ)", |o| {
                weighted_real(o[0].matmul_forms(Form::Plain, o[0], Form::Adjoint)?)
            })
            .probe("column", "Σ w ∘ |first column of U₂|² (basis-dependent)", |o| {
                let m = o[0].shape().0;
                abs2(o[0].slice(0..m, 0..1)?)
            })
            .cases(|| {
                // the checker cannot perturb along orthonormal matrices: the leaves are a
                // general tall matrix, mapped to orthonormal columns by the thin SVD's U
                vec![
                    Case::new("U₁ from a real 4×2", vec![real_matrix(4, 2, 100)])
                        .lift(thin_u)
                        .probes(&["projector"])
                        .refuses(&["column"]),
                    Case::new("U₁ from a complex 3×1", vec![complex_matrix(3, 1, 101)])
                        .lift(thin_u)
                        .probes(&["projector"]),
                ]
            }),
        OpSpec::new("eig", "eigenvalues (n×1 complex, ascending real part then imaginary part) and unit eigenvectors V of a general square X")
            .input("X")
            .output("lambda")
            .output("V")
            .param("policy", "error", "error | well_defined | broaden: what to do at repeated eigenvalues")
            .param("eps", "1e-6", "the broadening ε when policy = broaden")
            .cotangents("λ̄ any at distinct eigenvalues, equal across a tied block; V̄ without a component along the eigenvectors' phases, and under policy=well_defined along changes of basis of a tied eigenspace")
            .apply(|x, p| {
                let (l, v) = eig_with(x[0], policy(p, EIG_GAP_RTOL)?)?;
                Ok(vec![l, v])
            })
            .probe("values", "λ", |o| Ok(o[0]))
            .probe("sum", "Σ λ (the trace)", |o| o[0].sum(Axis::All))
            .probe("abs2", "Σ w ∘ |V|²", |o| abs2(o[1]))
            .probe("weighted", "Σᵢ Re(λᵢ) Σⱼ cⱼ |Vⱼᵢ|², c = (1, …, n): order- and phase-invariant (the golden-value loss)", |o| {
                let w = o[1].abs()?;
                let n = w.shape().0;
                let c = w.tape().constant(Value::Real(faer::Mat::from_fn(n, n, |j, _| (j + 1) as f64)))?;
                let per = w.mul(w)?.mul(c)?.sum(Axis::Rows)?;
                per.matmul(o[0].real()?)
            })
            .probe("raw_vectors", "Σ w ∘ Re V (phase-dependent)", |o| weighted_real(o[1]))
            .cases(eig_cases),
        OpSpec::new("eigvals", "eigenvalues of a general square X (n×1 complex, ascending real part then imaginary part)")
            .input("X")
            .apply(|x, _| one(eigvals(x[0])?))
            .cases(|| {
                vec![
                    Case::new("real 3×3", vec![real_matrix(3, 3, 85)]),
                    Case::new("complex 2×2", vec![complex_matrix(2, 2, 86)]),
                    Case::new("empty 0×0", vec![Value::zeros(DType::F64, 0, 0)]),
                ]
            }),
        OpSpec::new("expm", "exponential of a general square X (Fréchet derivative by the block identity)")
            .input("X")
            .apply(|x, _| one(expm(x[0])?))
            .cases(general_fn_cases),
        OpSpec::new("logm", "principal log of a general square X (no eigenvalue on the closed negative real axis)")
            .input("X")
            .apply(|x, _| one(logm(x[0])?))
            .cases(general_fn_cases),
        OpSpec::new("sqrtm", "principal square root of a general square X (no eigenvalue on the closed negative real axis)")
            .input("X")
            .apply(|x, _| one(sqrtm(x[0])?))
            .cases(general_fn_cases),
        OpSpec::new("range_projector", "Π = Z(ZᴴZ)⁻¹Zᴴ and W = Z(ZᴴZ)⁻¹ for a tall Z of full column rank, through a QR")
            .input("Z")
            .output("Pi")
            .output("W")
            .cotangents("any")
            .apply(|x, _| {
                let (p, w) = range_projector(x[0])?;
                Ok(vec![p, w])
            })
            .probe("projector", "Π", |o| Ok(o[0]))
            .probe("pinv", "W = Z⁺ᴴ", |o| Ok(o[1]))
            .cases(range_cases),
    ]
}
