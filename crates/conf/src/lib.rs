//! keepalived.conf, read as keepalived 2.2.7 reads it: a preprocessor
//! ([`reader`]), a brace tree ([`tree`]), the keyword vocabulary
//! ([`schema`]) and a builder into the typed [`model`], with diagnostics
//! that carry file:line:col.

#![forbid(unsafe_code)]

pub mod build;
pub mod diag;
pub mod model;
pub mod reader;
pub mod schema;
pub mod tree;

pub use diag::{Diag, Pos, Severity};
pub use model::Config;
pub use reader::Options;

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub diags: Vec<Diag>,
    /// VRRP instances left out for an error that stops keepalived's VRRP
    /// process at start (its exit status 2); rlvs runs the rest.
    pub dropped_instances: Vec<String>,
}

impl Loaded {
    pub fn worst(&self) -> Option<Severity> {
        self.diags.iter().map(|d| d.severity).max()
    }
}

/// Reads and builds `path` (a glob, as keepalived allows). Err when no
/// file matched or the first could not be read.
pub fn load_file(path: &Path, opts: Options) -> Result<Loaded, Diag> {
    let mut diags = Vec::new();
    let mut reader = reader::Reader::new(opts, &mut diags);
    if !reader.read_path(path) {
        let lines_diag = diags.pop();
        return Err(lines_diag.unwrap_or(Diag {
            severity: Severity::Error,
            pos: None,
            message: format!("Configuration file '{}' not found", path.display()),
            hint: None,
        }));
    }
    let lines = reader.finish();
    Ok(finish(lines, diags))
}

/// Builds configuration text as if read from the file `name`.
pub fn load_str(name: &str, text: &str, opts: Options) -> Loaded {
    let mut diags = Vec::new();
    let mut reader = reader::Reader::new(opts, &mut diags);
    reader.read_text(Path::new(name), text);
    let lines = reader.finish();
    finish(lines, diags)
}

fn finish(lines: Vec<reader::Line>, mut diags: Vec<Diag>) -> Loaded {
    let nodes = tree::build(lines, &mut diags);
    let (config, more, dropped_instances) = build::build(&nodes);
    diags.extend(more);
    // In file order, as an operator reads them; position-less last.
    diags.sort_by(|a, b| match (&a.pos, &b.pos) {
        (Some(x), Some(y)) => (&*x.file, x.line, x.col).cmp(&(&*y.file, y.line, y.col)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Loaded { config, diags, dropped_instances }
}
