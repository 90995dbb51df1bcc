//! Errors of table operations, carried as the errno the kernel would return
//! so that the ipvsadm face can map them through libipvs's message table.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum IpvsError {
    /// EEXIST: service or destination already exists.
    #[error("already exists")]
    Exists,
    /// ESRCH: no such service.
    #[error("no such service")]
    NoService,
    /// ENOENT: no such destination (dest ops) or scheduler (service ops).
    #[error("not found")]
    NotFound,
    /// EINVAL: a value the kernel rejects.
    #[error("invalid argument")]
    Invalid,
    /// ERANGE: a value out of range (negative weight, lower > upper threshold).
    #[error("out of range")]
    Range,
    /// EOPNOTSUPP: something this backend does not do.
    #[error("operation not supported")]
    NotSupported,
    /// ENOMEM: no room left (the kernel's allocation failures; rlvs's full
    /// traffic filter tables).
    #[error("out of memory")]
    NoMemory,
    /// ENODEV: no such interface (a sync daemon's mcast interface).
    #[error("no such device")]
    NoDevice,
}

impl IpvsError {
    pub fn errno(self) -> i32 {
        match self {
            IpvsError::Exists => 17,
            IpvsError::NoService => 3,
            IpvsError::NotFound => 2,
            IpvsError::Invalid => 22,
            IpvsError::Range => 34,
            IpvsError::NotSupported => 95,
            IpvsError::NoMemory => 12,
            IpvsError::NoDevice => 19,
        }
    }
}
