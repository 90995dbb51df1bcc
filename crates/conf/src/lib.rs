//! keepalived.conf, read as keepalived 2.2.7 reads it.

pub mod diag;
pub mod reader;

pub use diag::{Diag, Pos, Severity};
