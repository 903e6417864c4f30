//! `matgrad`: check, differentiate and train matrix-calculus ops from the command line.

use clap::{Parser, Subcommand};

mod cli;

#[derive(Parser)]
#[command(
    name = "matgrad",
    version,
    about = "Matrix calculus with exact adjoints: gradient checks, VJP/JVP, experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sweep every registered op through the gradient checker (finite differences,
    /// JVP/VJP dot product, second order) and print a table; exit status 1 on any failure.
    Check {
        /// Only this op.
        #[arg(long)]
        op: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Also write a report (report.md, report.json) and an SVG plot of gradient error
        /// vs eigenvalue gap, matgrad against the eigh-composition route, into this directory.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Gradient of ⟨Ḡ, f(X₁, …)⟩ = sum(Ḡ ∘ f(X₁, …)) with respect to each input, written in
    /// input order (one --output per --input). Arrays are 2-D .npy, float64 or complex128.
    Vjp {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// The cotangent Ḡ (shape and dtype of the output).
        #[arg(long)]
        cotangent: std::path::PathBuf,
        /// Output files, one per input.
        #[arg(long = "output", required = true)]
        outputs: Vec<std::path::PathBuf>,
        /// Op parameters, NAME=VALUE.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// Directional derivative of f at X along the tangents (one --tangent per --input).
    Jvp {
        /// The op (see `matgrad ops`).
        op: String,
        /// Input arrays, in order.
        #[arg(long = "input", required = true)]
        inputs: Vec<std::path::PathBuf>,
        /// Tangents, one per input.
        #[arg(long = "tangent", required = true)]
        tangents: Vec<std::path::PathBuf>,
        /// The output file.
        #[arg(long)]
        output: std::path::PathBuf,
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
    /// List every registered op with its arity and exact semantics.
    Ops {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check { op, json, out } => cli::check::run(op.as_deref(), json, out.as_deref()),
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
        Command::Vjp {
            op,
            inputs,
            cotangent,
            outputs,
            params,
        } => cli::diff::run(
            cli::diff::Mode::Vjp { cotangent },
            &op,
            &inputs,
            &outputs,
            &params,
        ),
        Command::Jvp {
            op,
            inputs,
            tangents,
            output,
            params,
        } => cli::diff::run(
            cli::diff::Mode::Jvp { tangents },
            &op,
            &inputs,
            &[output],
            &params,
        ),
    };
    std::process::exit(code);
}
