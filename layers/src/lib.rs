//! matgrad-layers: structured layers built on the engine and spectral crates. Work in progress.
#![warn(missing_docs)]
