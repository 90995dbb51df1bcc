//! The health-check core, sans IO: [`checker::Checker`] decides after each
//! probe when to probe next and whether the checker changed state, as
//! keepalived 2.2.7's checkers do; [`pool::Pool`] turns checker states
//! into the virtual server's table (alive servers, inhibit_on_failure,
//! quorum with hysteresis, sorry server), as keepalived's ipwrapper does.
//! The shell runs the probes and applies the table operations.

#![forbid(unsafe_code)]

pub mod checker;
pub mod pool;
