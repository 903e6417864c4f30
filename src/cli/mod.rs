//! The `matgrad` command line: thin over the library.

pub mod check;
pub mod ops;
pub mod registry;
