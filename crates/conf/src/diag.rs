//! Diagnostics with the position they are about.
//!
//! Each carries keepalived's own wording where keepalived 2.2.7 reports the
//! same problem (so operators' searches still find it), prefixed by
//! `file:line:col` rather than keepalived's `(file: Line N)`, and rlvs's
//! addition — a did-you-mean, or why a keyword is ignored — as a hint.

use serde::Serialize;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: u32,
    /// 1-based, in characters of the physical line.
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not a problem with the file: something rlvs wants the operator to
    /// know (a keyword it reads but does not act on).
    Note,
    Warning,
    /// The configuration cannot be used as written (keepalived exits, or
    /// drops the whole item).
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diag {
    pub severity: Severity,
    pub pos: Option<Pos>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diag {
    pub fn warning(pos: &Pos, message: impl Into<String>) -> Diag {
        Diag { severity: Severity::Warning, pos: Some(pos.clone()), message: message.into(), hint: None }
    }
    pub fn error(pos: &Pos, message: impl Into<String>) -> Diag {
        Diag { severity: Severity::Error, pos: Some(pos.clone()), message: message.into(), hint: None }
    }
    pub fn note(pos: &Pos, message: impl Into<String>) -> Diag {
        Diag { severity: Severity::Note, pos: Some(pos.clone()), message: message.into(), hint: None }
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diag {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.pos {
            write!(f, "{p}: ")?;
        }
        let level = match self.severity {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{level}: {}", self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}
