//! The `matgrad` command line: thin over the library.

pub mod check;
pub mod diff;
pub mod exit;
pub mod gap_report;
pub mod ops;
pub mod train;
