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
        Command::Check { op, json } => cli::check::run(op.as_deref(), json),
        Command::Ops { json } => cli::ops::run(json),
    };
    std::process::exit(code);
}
