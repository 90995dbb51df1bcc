//! The ipvsadm face. `run` takes ipvsadm's argv and behaves as ipvsadm 1.31
//! does — same option parsing, same checks in the same order, same messages
//! and exit codes, same listings — with the kernel replaced by a [`Backend`]
//! (the rlvs daemon of the caller's network namespace).

mod cmd;
pub mod format;
mod options;
mod parse;
pub mod popt;
pub mod resolve;

use rlvs_ctl::{Request, Response};

/// Where ipvsadm's requests go.
pub trait Backend {
    fn call(&mut self, req: Request) -> Result<Response, BackendError>;

    /// The kernel's IPVS, which has what rlvs's own engines lack
    /// (fwmark and SCTP services).
    fn is_kernel(&self) -> bool {
        false
    }
}

#[derive(Debug)]
pub enum BackendError {
    /// No daemon answers in this network namespace.
    NotRunning,
    /// The kernel backend was asked for and the kernel has no IPVS.
    KernelUnavailable,
    Io(std::io::Error),
}

/// The daemon of the caller's network namespace, connected on first use so
/// that `-h`, `-v` and command-line errors need no daemon.
#[derive(Default)]
pub struct DaemonBackend {
    client: Option<rlvs_ctl::Client>,
}

impl Backend for DaemonBackend {
    fn call(&mut self, req: Request) -> Result<Response, BackendError> {
        if self.client.is_none() {
            self.client = Some(rlvs_ctl::Client::connect().map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => BackendError::NotRunning,
                _ => BackendError::Io(e),
            })?);
        }
        self.client.as_mut().unwrap().call(&req).map_err(BackendError::Io)
    }
}

/// What a run printed and how it exited.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Runs ipvsadm with `argv` (argv[0] is the program name as invoked);
/// `-R` reads its commands from `stdin`.
pub fn run(argv: &[String], backend: &mut dyn Backend, stdin: &mut dyn std::io::BufRead) -> Outcome {
    cmd::run(argv, backend, stdin)
}
