//! One definition per op: the registry.
//!
//! JAX registers each primitive once, with its implementation and its rules, and everything
//! else reads that registration. matgrad does the same one level up: an [`OpSpec`] names an
//! op, its inputs (and their domains), outputs, parameters and one-line semantics, says how
//! to apply it to `Var`s, lists the cases the gradient checker sweeps, and — for ops with
//! several outputs, whose raw outputs carry a gauge freedom — the probe losses that are
//! invariant to it. The command line (`ops`, `eval`, `vjp`, `jvp`, `hvp`, `check`), the
//! golden-value tests and the property tests all read the same [`Registry`]; a user's op
//! registers the same way and is swept by the same [`check_op`].
//!
//! ```
//! use matgrad_engine::spec::{Case, OpSpec, Registry, check_op};
//! use matgrad_engine::testing::real_matrix;
//! # fn main() -> Result<(), matgrad_engine::Error> {
//! let mut registry = Registry::new();
//! registry.register(
//!     OpSpec::new("cube", "X ∘ X ∘ X entrywise")
//!         .input("X")
//!         .apply(|x, _| Ok(vec![x[0].mul(x[0])?.mul(x[0])?]))
//!         .cases(|| vec![Case::new("real 2×3", vec![real_matrix(2, 3, 1)])]),
//! )?;
//! let report = check_op(registry.get("cube").unwrap());
//! assert!(report.passed(), "{:?}", report.failures);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::check::{check, CheckOptions, CheckReport, Domain, Order, Tolerance};
use crate::error::{EngineError, Result};
use crate::tape::{Tape, Var};
use crate::value::Value;

/// A named parameter of an op.
#[derive(Clone, Debug)]
pub struct ParamSpec {
    /// Name used in `--param NAME=VALUE`.
    pub name: &'static str,
    /// Default value.
    pub default: &'static str,
    /// Meaning and allowed values.
    pub meaning: &'static str,
}

/// Parameter values for one application of an op: the spec's defaults, overridden.
#[derive(Clone, Debug)]
pub struct Params {
    op: &'static str,
    values: BTreeMap<&'static str, String>,
}

impl Params {
    /// The defaults of `spec`.
    pub fn defaults(spec: &OpSpec) -> Params {
        Params {
            op: spec.name,
            values: spec
                .params
                .iter()
                .map(|p| (p.name, p.default.to_string()))
                .collect(),
        }
    }

    /// Defaults overridden by `given` (`NAME=VALUE` strings).
    ///
    /// # Errors
    /// A malformed pair; a name the op does not take.
    pub fn parse(spec: &OpSpec, given: &[String]) -> Result<Params> {
        let mut p = Params::defaults(spec);
        for g in given {
            let Some((k, v)) = g.split_once('=') else {
                return Err(EngineError::InvalidArgument {
                    op: spec.name,
                    message: format!("parameter {g:?} is not NAME=VALUE"),
                });
            };
            p.set(spec, k.trim(), v.trim())?;
        }
        Ok(p)
    }

    /// Sets one parameter.
    ///
    /// # Errors
    /// A name the op does not take.
    pub fn set(&mut self, spec: &OpSpec, name: &str, value: &str) -> Result<()> {
        let Some(ps) = spec.params.iter().find(|p| p.name == name) else {
            let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            return Err(EngineError::InvalidArgument {
                op: spec.name,
                message: format!(
                    "unknown parameter {name:?}; this op takes {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        };
        self.values.insert(ps.name, value.to_string());
        Ok(())
    }

    /// The raw string of a parameter.
    ///
    /// # Errors
    /// The op has no such parameter.
    pub fn str(&self, name: &str) -> Result<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .ok_or(EngineError::InvalidArgument {
                op: self.op,
                message: format!("missing parameter {name}"),
            })
    }

    /// A finite real parameter.
    ///
    /// # Errors
    /// Not a finite number.
    pub fn f64(&self, name: &str) -> Result<f64> {
        let v = self.str(name)?;
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
        let v = self.str(name)?;
        v.parse::<usize>()
            .map_err(|_| EngineError::InvalidArgument {
                op: self.op,
                message: format!("parameter {name}={v} is not a nonnegative integer"),
            })
    }

    /// One of `choices`.
    ///
    /// # Errors
    /// Anything else.
    pub fn choice(&self, name: &str, choices: &[&'static str]) -> Result<&'static str> {
        let v = self.str(name)?;
        choices
            .iter()
            .find(|c| **c == v)
            .copied()
            .ok_or_else(|| EngineError::InvalidArgument {
                op: self.op,
                message: format!("parameter {name}={v} must be one of {}", choices.join(", ")),
            })
    }
}

/// One input of an op.
#[derive(Clone, Debug)]
pub struct InputSpec {
    /// Its name in the docs.
    pub name: &'static str,
    /// Its domain (decides the checker's directions).
    pub domain: Domain,
}

/// How an op is applied: input Vars and parameters to output Vars.
pub type Apply = Rc<dyn for<'t> Fn(&[Var<'t>], &Params) -> Result<Vec<Var<'t>>>>;

/// A loss of an op's outputs (a probe).
pub type Loss = Rc<dyn for<'t> Fn(&[Var<'t>]) -> Result<Var<'t>>>;

/// How cases are made.
pub type CaseFn = Rc<dyn Fn() -> Vec<Case>>;

/// A function of an op's outputs for the checker to differentiate: for a multi-output op
/// whose raw outputs carry a gauge (eigenvector signs and phases, the basis of a degenerate
/// eigenspace), a loss invariant to it.
#[derive(Clone)]
pub struct Probe {
    /// Its name (cases refer to it).
    pub name: &'static str,
    /// What it computes.
    pub meaning: &'static str,
    /// The loss.
    pub loss: Loss,
}

/// Maps the checker's leaves to the op's inputs (for an op whose input lives on a manifold
/// the checker cannot perturb along, e.g. orthonormal columns).
pub type Lift = Rc<dyn for<'t> Fn(&[Var<'t>]) -> Result<Vec<Var<'t>>>>;

/// One input configuration for the checker.
#[derive(Clone)]
pub struct Case {
    /// Short description ("real 3×4", "ties (−3, −3, −3, 1)", …).
    pub label: String,
    /// The inputs.
    pub inputs: Vec<Value>,
    /// Parameter overrides.
    pub params: Vec<(&'static str, String)>,
    /// Tolerance preset.
    pub tolerance: Tolerance,
    /// Orders checked.
    pub order: Order,
    /// Probes to check (empty: all of the op's probes).
    pub probes: Vec<&'static str>,
    /// Probes whose derivative does not exist at this input: both modes must refuse them
    /// with the same degeneracy error.
    pub refused: Vec<&'static str>,
    /// Optional map from the checker's leaves to the op's inputs.
    pub lift: Option<Lift>,
}

impl Case {
    /// A case with the STRICT tolerance, second order, every probe.
    pub fn new(label: impl Into<String>, inputs: Vec<Value>) -> Case {
        Case {
            label: label.into(),
            inputs,
            params: Vec::new(),
            tolerance: Tolerance::STRICT,
            order: Order::Second,
            probes: Vec::new(),
            refused: Vec::new(),
            lift: None,
        }
    }
    /// With a tolerance preset.
    #[must_use]
    pub fn tol(mut self, t: Tolerance) -> Case {
        self.tolerance = t;
        self
    }
    /// First order only.
    #[must_use]
    pub fn first_order(mut self) -> Case {
        self.order = Order::First;
        self
    }
    /// With a parameter override.
    #[must_use]
    pub fn param(mut self, name: &'static str, value: impl ToString) -> Case {
        self.params.push((name, value.to_string()));
        self
    }
    /// Only these probes.
    #[must_use]
    pub fn probes(mut self, names: &[&'static str]) -> Case {
        self.probes = names.to_vec();
        self
    }
    /// These probes must be refused by both modes.
    #[must_use]
    pub fn refuses(mut self, names: &[&'static str]) -> Case {
        self.refused = names.to_vec();
        self
    }
    /// Through a lift.
    #[must_use]
    pub fn lift(
        mut self,
        lift: impl for<'t> Fn(&[Var<'t>]) -> Result<Vec<Var<'t>>> + 'static,
    ) -> Case {
        self.lift = Some(Rc::new(lift));
        self
    }
}

/// The definition of one op.
#[derive(Clone)]
pub struct OpSpec {
    /// Name (command line, golden files, reports).
    pub name: &'static str,
    /// Exact semantics in one line.
    pub summary: &'static str,
    /// Inputs, in order.
    pub inputs: Vec<InputSpec>,
    /// Output names, in order (one unless the op has several).
    pub outputs: Vec<&'static str>,
    /// Parameters.
    pub params: Vec<ParamSpec>,
    /// Which cotangents of the outputs have a gradient (for multi-output ops).
    pub cotangents: &'static str,
    /// How to apply it.
    pub apply: Apply,
    /// Cases for the checker.
    pub cases: CaseFn,
    /// Gauge-invariant probe losses of the outputs (empty: the single output itself).
    pub probes: Vec<Probe>,
}

impl OpSpec {
    /// A spec with no inputs, one output `Y`, no parameters, no cases.
    pub fn new(name: &'static str, summary: &'static str) -> OpSpec {
        OpSpec {
            name,
            summary,
            inputs: Vec::new(),
            outputs: Vec::new(),
            params: Vec::new(),
            cotangents: "any cotangent of the output's shape and dtype",
            apply: Rc::new(|_, _| {
                Err(EngineError::InvalidArgument {
                    op: "spec",
                    message: "the op has no apply function".into(),
                })
            }),
            cases: Rc::new(Vec::new),
            probes: Vec::new(),
        }
    }
    /// Adds an input of any value.
    #[must_use]
    pub fn input(self, name: &'static str) -> OpSpec {
        self.input_in(name, Domain::General)
    }
    /// Adds an input with a domain.
    #[must_use]
    pub fn input_in(mut self, name: &'static str, domain: Domain) -> OpSpec {
        self.inputs.push(InputSpec { name, domain });
        self
    }
    /// Adds an output name (an op without any has one output, `Y`).
    #[must_use]
    pub fn output(mut self, name: &'static str) -> OpSpec {
        self.outputs.push(name);
        self
    }
    /// Adds a parameter.
    #[must_use]
    pub fn param(
        mut self,
        name: &'static str,
        default: &'static str,
        meaning: &'static str,
    ) -> OpSpec {
        self.params.push(ParamSpec {
            name,
            default,
            meaning,
        });
        self
    }
    /// Documents the admissible cotangents.
    #[must_use]
    pub fn cotangents(mut self, doc: &'static str) -> OpSpec {
        self.cotangents = doc;
        self
    }
    /// Sets the apply function.
    #[must_use]
    pub fn apply(
        mut self,
        f: impl for<'t> Fn(&[Var<'t>], &Params) -> Result<Vec<Var<'t>>> + 'static,
    ) -> OpSpec {
        self.apply = Rc::new(f);
        self
    }
    /// Sets the case generator.
    #[must_use]
    pub fn cases(mut self, f: impl Fn() -> Vec<Case> + 'static) -> OpSpec {
        self.cases = Rc::new(f);
        self
    }
    /// Adds a probe loss.
    #[must_use]
    pub fn probe(
        mut self,
        name: &'static str,
        meaning: &'static str,
        loss: impl for<'t> Fn(&[Var<'t>]) -> Result<Var<'t>> + 'static,
    ) -> OpSpec {
        self.probes.push(Probe {
            name,
            meaning,
            loss: Rc::new(loss),
        });
        self
    }
    /// Output names (`["Y"]` when none were given).
    pub fn output_names(&self) -> Vec<&'static str> {
        if self.outputs.is_empty() {
            vec!["Y"]
        } else {
            self.outputs.clone()
        }
    }
    /// Applies the op to `inputs` with `params`, checking the number of inputs.
    ///
    /// # Errors
    /// Wrong number of inputs; errors of the op.
    pub fn call<'t>(&self, inputs: &[Var<'t>], params: &Params) -> Result<Vec<Var<'t>>> {
        if inputs.len() != self.inputs.len() {
            return Err(EngineError::InvalidArgument {
                op: self.name,
                message: format!("takes {} input(s), got {}", self.inputs.len(), inputs.len()),
            });
        }
        (self.apply)(inputs, params)
    }
}

impl std::fmt::Debug for OpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpSpec({})", self.name)
    }
}

/// A set of op specs, looked up by name.
#[derive(Clone, Default, Debug)]
pub struct Registry {
    ops: Vec<OpSpec>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }
    /// Adds a spec.
    ///
    /// # Errors
    /// A spec of the same name is registered already.
    pub fn register(&mut self, spec: OpSpec) -> Result<()> {
        if self.get(spec.name).is_some() {
            return Err(EngineError::InvalidArgument {
                op: "register",
                message: format!("an op named {:?} is registered already", spec.name),
            });
        }
        self.ops.push(spec);
        Ok(())
    }
    /// Adds every spec of `specs`.
    ///
    /// # Errors
    /// A duplicate name.
    pub fn extend(&mut self, specs: impl IntoIterator<Item = OpSpec>) -> Result<()> {
        for s in specs {
            self.register(s)?;
        }
        Ok(())
    }
    /// The spec called `name`.
    pub fn get(&self, name: &str) -> Option<&OpSpec> {
        self.ops.iter().find(|o| o.name == name)
    }
    /// The spec called `name`, or an error that suggests the nearest name.
    ///
    /// # Errors
    /// No such op.
    pub fn lookup(&self, name: &str) -> Result<&OpSpec> {
        self.get(name).ok_or_else(|| EngineError::InvalidArgument {
            op: "registry",
            message: match suggest(name, self.names()) {
                Some(s) => {
                    format!("unknown op {name:?}; did you mean {s:?}? (`matgrad ops` lists them)")
                }
                None => format!("unknown op {name:?}; `matgrad ops` lists the ops"),
            },
        })
    }
    /// All specs, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &OpSpec> {
        self.ops.iter()
    }
    /// All names.
    pub fn names(&self) -> Vec<&'static str> {
        self.ops.iter().map(|o| o.name).collect()
    }
    /// Number of specs.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The candidate nearest to `name` by edit distance, if it is near enough to be a typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    fn dist(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .into_iter()
        .map(|c| (dist(name, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// What happened to one (case, probe) pair.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Checked: the report (which may have failed).
    Checked(CheckReport),
    /// Refused by both modes with the same degeneracy error, as the case expects.
    Refused(String),
    /// Something went wrong: the message.
    Error(String),
}

/// One line of an op's sweep.
#[derive(Clone, Debug)]
pub struct CaseLine {
    /// The case's label.
    pub case: String,
    /// The probe (`"Y"` for a single-output op).
    pub probe: &'static str,
    /// The outcome.
    pub outcome: Outcome,
}

impl CaseLine {
    /// True when the line passed.
    pub fn passed(&self) -> bool {
        match &self.outcome {
            Outcome::Checked(r) => r.passed,
            Outcome::Refused(_) => true,
            Outcome::Error(_) => false,
        }
    }
}

/// An op's sweep through the checker.
#[derive(Clone, Debug)]
pub struct OpReport {
    /// The op.
    pub name: &'static str,
    /// Every (case, probe) line.
    pub lines: Vec<CaseLine>,
    /// Worst VJP/JVP-vs-FD error.
    pub fd: f64,
    /// Worst dot-product error.
    pub dot: f64,
    /// Worst second-order error.
    pub second: f64,
    /// Worst reverse-vs-forward-over-reverse HVP difference.
    pub hvp_modes: f64,
    /// Failed lines, described.
    pub failures: Vec<String>,
}

impl OpReport {
    /// True when every line passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
    /// Number of distinct cases.
    pub fn cases(&self) -> usize {
        let mut c: Vec<&str> = self.lines.iter().map(|l| l.case.as_str()).collect();
        c.dedup();
        c.len()
    }
}

/// The function the checker differentiates for one (case, probe).
fn probe_fn<'s>(
    spec: &'s OpSpec,
    case: &'s Case,
    params: &'s Params,
    probe: Option<&'s Probe>,
) -> impl for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>> + 's {
    move |_, xs| {
        let ins = match &case.lift {
            Some(l) => l(xs)?,
            None => xs.to_vec(),
        };
        let outs = spec.call(&ins, params)?;
        match probe {
            Some(p) => (p.loss)(&outs),
            None => outs.first().copied().ok_or(EngineError::InvalidArgument {
                op: spec.name,
                message: "the op returned no output".into(),
            }),
        }
    }
}

/// Checks that both modes refuse `f` at `inputs` with the same degeneracy error.
fn expect_refusal<F>(
    f: &F,
    inputs: &[Value],
    domains: &[Domain],
) -> std::result::Result<String, String>
where
    F: for<'t> Fn(&'t Tape, &[Var<'t>]) -> Result<Var<'t>>,
{
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x0ff5);
    let tape = Tape::new();
    let xs = inputs
        .iter()
        .map(|x| tape.leaf(x.clone()))
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let y = f(&tape, &xs).map_err(|e| format!("the forward pass failed: {e}"))?;
    let ybar = crate::check::random_like(&y.value(), &mut rng);
    let dirs: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(k, x)| {
            crate::check::random_in(domains.get(k).copied().unwrap_or_default(), x, &mut rng)
        })
        .collect();
    let rev = tape.vjp(&[y], &[ybar], &xs);
    let fwd = tape.jvp(&xs, &dirs, &[y]);
    match (rev, fwd) {
        (Err(r), Err(f)) if r.is_degeneracy() && std::mem::discriminant(&r) == std::mem::discriminant(&f) => {
            Ok(r.to_string())
        }
        (r, f) => Err(format!(
            "expected both modes to refuse with the same degeneracy error; reverse: {}, forward: {}",
            r.map_or_else(|e| e.to_string(), |_| "a gradient".into()),
            f.map_or_else(|e| e.to_string(), |_| "a tangent".into())
        )),
    }
}

/// Sweeps one op through the checker: every case, every probe (or the case's selection),
/// every mode (VJP and JVP against finite differences, the dot-product identity, and at
/// second order reverse-over-reverse and forward-over-reverse), plus the refusals the
/// cases expect.
pub fn check_op(spec: &OpSpec) -> OpReport {
    let mut rep = OpReport {
        name: spec.name,
        lines: Vec::new(),
        fd: 0.0,
        dot: 0.0,
        second: 0.0,
        hvp_modes: 0.0,
        failures: Vec::new(),
    };
    let domains: Vec<Domain> = spec.inputs.iter().map(|i| i.domain).collect();
    for case in (spec.cases)() {
        let mut params = Params::defaults(spec);
        let mut bad = None;
        for (k, v) in &case.params {
            if let Err(e) = params.set(spec, k, v) {
                bad = Some(e.to_string());
            }
        }
        let probes: Vec<Option<&Probe>> = if spec.probes.is_empty() {
            vec![None]
        } else {
            spec.probes
                .iter()
                .filter(|p| {
                    case.probes.is_empty()
                        || case.probes.contains(&p.name)
                        || case.refused.contains(&p.name)
                })
                .map(Some)
                .collect()
        };
        for probe in probes {
            let pname = probe.map_or("Y", |p| p.name);
            let outcome = if let Some(msg) = &bad {
                Outcome::Error(msg.clone())
            } else if case.refused.contains(&pname) {
                let f = probe_fn(spec, &case, &params, probe);
                match expect_refusal(&f, &case.inputs, &domains) {
                    Ok(m) => Outcome::Refused(m),
                    Err(m) => Outcome::Error(m),
                }
            } else {
                let f = probe_fn(spec, &case, &params, probe);
                let opts = CheckOptions {
                    tolerance: case.tolerance,
                    order: case.order,
                    domains: domains.clone(),
                    ..CheckOptions::default()
                };
                match check(f, &case.inputs, &opts) {
                    Ok(r) => Outcome::Checked(r),
                    Err(e) => Outcome::Error(e.to_string()),
                }
            };
            if let Outcome::Checked(r) = &outcome {
                rep.fd = rep.fd.max(r.vjp_fd_error).max(r.jvp_fd_error);
                rep.dot = rep.dot.max(r.dot_product_error);
                rep.second = rep.second.max(r.second_order_error.unwrap_or(0.0));
                rep.hvp_modes = rep.hvp_modes.max(r.hvp_modes_error.unwrap_or(0.0));
            }
            let line = CaseLine {
                case: case.label.clone(),
                probe: pname,
                outcome,
            };
            if !line.passed() {
                rep.failures.push(format!(
                    "{} [{}]: {}",
                    line.case,
                    line.probe,
                    match &line.outcome {
                        Outcome::Checked(r) => r.to_string(),
                        Outcome::Error(m) | Outcome::Refused(m) => m.clone(),
                    }
                ));
            }
            rep.lines.push(line);
        }
    }
    rep
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::real_matrix;

    #[test]
    fn suggestions_catch_typos_only() {
        let names = ["logm_sym", "expm_sym", "eigh", "svd"];
        assert_eq!(suggest("logm_sim", names), Some("logm_sym"));
        assert_eq!(suggest("eig", names), Some("eigh"));
        assert_eq!(suggest("cholesky", names), None);
    }

    #[test]
    fn a_broken_op_fails_its_sweep_and_refusals_are_checked() {
        let mut reg = Registry::new();
        reg.register(
            OpSpec::new("wrong_exp", "exp with a VJP off by 1e-6")
                .input("X")
                .apply(|x, _| {
                    let y = x[0].exp()?;
                    // y + 1e-6·(y − detach(y)): the value of exp, a derivative 1 + 1e-6 too big
                    let bump = y.sub(y.detach())?.scale(1e-6)?;
                    Ok(vec![y.add(bump)?])
                })
                .cases(|| vec![Case::new("2×2", vec![real_matrix(2, 2, 1)])]),
        )
        .unwrap();
        let r = check_op(reg.get("wrong_exp").unwrap());
        assert!(!r.passed() && r.fd > 1e-7, "{r:?}");
        // a case expecting a refusal that does not come fails
        let spec = OpSpec::new("fine", "X")
            .input("X")
            .apply(|x, _| Ok(vec![x[0].exp()?]))
            .probe("sum", "Σ Y", |y| y[0].sum(crate::Axis::All))
            .cases(|| vec![Case::new("2×2", vec![real_matrix(2, 2, 1)]).refuses(&["sum"])]);
        assert!(!check_op(&spec).passed());
        assert!(matches!(
            reg.register(OpSpec::new("wrong_exp", "again")),
            Err(EngineError::InvalidArgument { .. })
        ));
        assert!(reg
            .lookup("wrong_ex")
            .unwrap_err()
            .to_string()
            .contains("wrong_exp"));
    }
}
