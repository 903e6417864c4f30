//! `matgrad`: check, differentiate and train matrix-calculus ops from the command line.

use clap::{Parser, Subcommand};

mod cli;

/// mimalloc for this executable (docs/PERFORMANCE.md: the tape's small allocations); the
/// library leaves the allocator to its user.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "matgrad",
    version,
    about = "Matrix calculus with exact adjoints: gradient checks, eval/VJP/JVP/HVP on .npy files, experiments",
    after_help = "Conventions: arrays are 2-D .npy, float64 or complex128, C or Fortran order; an empty (0-sized) array is valid. \
vjp writes, per input, the gradient of Re Σₖ Σ conj(Ḡₖ) ∘ fₖ(X…) (PyTorch's convention for complex inputs: ∂/∂Re + i ∂/∂Im). \
Exit status: 0 success; 1 check found a failure; 2 usage (unknown op or parameter, file counts, an output path given twice); \
3 an input file is unreadable or invalid; 4 the op refused the input (shape, dtype, domain, singular); \
5 the derivative does not exist there (degenerate spectrum, gauge dependence, kink, order not implemented); 6 the outputs cannot be written. \
A failed run leaves none of its output files."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sweep every registered op through the gradient checker (VJP and JVP against finite
    /// differences, the JVP/VJP dot product, reverse-over-reverse and forward-over-reverse
    /// second order, and the refusals expected at ties and gauges); exit status 1 on any failure.
    Check {
        /// Only this op.
        #[arg(long)]
        op: Option<String>,
        /// Print every case and probe, not only failures.
        #[arg(long)]
        verbose: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also write a report (report.md, report.json) and an SVG plot of gradient error
        /// vs eigenvalue gap, matgrad against the eigh-composition route, into this directory.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Write each output of f(X₁, …) (one --output per output, in order).
    Eval {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// Output files, one per output of the op.
        #[arg(long = "output", required = true)]
        outputs: Vec<std::path::PathBuf>,
        /// Op parameters, NAME=VALUE.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// Gradient of Re Σₖ ⟨Ḡₖ, fₖ(X₁, …)⟩ with respect to each input, written in input order
    /// (one --output per --input; one --cotangent per output of the op, or `zero`).
    Vjp {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// Cotangents Ḡₖ, one per output of the op (shape and dtype of that output), or
        /// the word `zero` for an output the loss does not read.
        #[arg(long = "cotangent", required = true)]
        cotangents: Vec<String>,
        /// Output files, one per input.
        #[arg(long = "output", required = true)]
        outputs: Vec<std::path::PathBuf>,
        /// Op parameters, NAME=VALUE.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// Directional derivative of each output of f at X along the tangents (one --tangent
    /// per --input, one --output per output of the op).
    Jvp {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// Tangents, one per input.
        #[arg(long = "tangent", required = true)]
        tangents: Vec<std::path::PathBuf>,
        /// Output files, one per output of the op.
        #[arg(long = "output", required = true)]
        outputs: Vec<std::path::PathBuf>,
        /// Op parameters, NAME=VALUE.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// Hessian-vector product of Re Σₖ ⟨Ḡₖ, fₖ(X…)⟩ along the tangents: the directional
    /// derivative of the vjp gradient (one --output per --input).
    Hvp {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// Cotangents Ḡₖ, one per output of the op, or `zero`.
        #[arg(long = "cotangent", required = true)]
        cotangents: Vec<String>,
        /// Tangents, one per input.
        #[arg(long = "tangent", required = true)]
        tangents: Vec<std::path::PathBuf>,
        /// Output files, one per input.
        #[arg(long = "output", required = true)]
        outputs: Vec<std::path::PathBuf>,
        /// Op parameters, NAME=VALUE.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// Run an experiment on the embedded images (see --list).
    Train {
        /// The experiment.
        name: Option<String>,
        /// List the registered experiments.
        #[arg(long)]
        list: bool,
        /// Seed for all randomness.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Small configuration (≤ 30 s; what CI runs).
        #[arg(long)]
        quick: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Write the result table into this directory.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// List every registered op: inputs and their domains, outputs, parameters, exact
    /// semantics, admissible cotangents.
    Ops {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    use cli::diff::{run as diff, Mode};
    let code = match cli.command {
        Command::Check {
            op,
            verbose,
            json,
            out,
        } => cli::check::run(op.as_deref(), json, verbose, out.as_deref()),
        Command::Ops { json } => cli::ops::run(json),
        Command::Train {
            name,
            list,
            seed,
            quick,
            json,
            out,
        } => {
            let opts = cli::train::TrainOptions {
                seed,
                quick,
                progress: !json,
            };
            cli::train::run(name.as_deref(), list, &opts, json, out.as_deref())
        }
        Command::Eval {
            op,
            inputs,
            outputs,
            params,
        } => diff(Mode::Eval, &op, &inputs, &outputs, &params),
        Command::Vjp {
            op,
            inputs,
            cotangents,
            outputs,
            params,
        } => diff(Mode::Vjp { cotangents }, &op, &inputs, &outputs, &params),
        Command::Jvp {
            op,
            inputs,
            tangents,
            outputs,
            params,
        } => diff(Mode::Jvp { tangents }, &op, &inputs, &outputs, &params),
        Command::Hvp {
            op,
            inputs,
            cotangents,
            tangents,
            outputs,
            params,
        } => diff(
            Mode::Hvp {
                cotangents,
                tangents,
            },
            &op,
            &inputs,
            &outputs,
            &params,
        ),
    };
    std::process::exit(code);
}
