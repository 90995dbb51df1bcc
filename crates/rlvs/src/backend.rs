//! Which backend holds the table, decided once and said out loud.
//!
//! The daemon (`--engine`, also for the keepalived face through
//! RLVS_ENGINE): `kernel` programs kernel IPVS and fails with one line
//! where there is none; `auto` takes kernel IPVS when ip_vs is loaded or
//! loads, unless the configuration needs FULLNAT (which the kernel lacks),
//! and rlvs's own data plane otherwise; `afxdp`, `afpacket` and `none` are
//! rlvs's own.
//!
//! The ipvsadm face (`rlvs adm`, or rlvs invoked as `ipvsadm`) asks either
//! the daemon of its network namespace or the kernel, by this rule, first
//! match wins:
//! 1. RLVS_BACKEND=daemon|kernel in the environment;
//! 2. the first word of /etc/rlvs/backend (`daemon` or `kernel`);
//! 3. the kernel when this kernel has ip_vs (loaded, built in, or a module
//!    modprobe can load, as ipvsadm loads it), the daemon otherwise.
//!
//! Nothing in it depends on whether a daemon is running at that moment, so
//! a daemon that restarts never makes ipvsadm silently read another table.

use anyhow::{bail, Result};
use rlvs_conf::model::{Config, LbKind};
use rlvs_dataplane::EngineKind;

pub const RULE_FILE: &str = "/etc/rlvs/backend";

/// What the daemon runs on.
pub enum Chosen {
    Kernel(Box<rlvs_ipvs::client::Client>),
    Own(EngineKind),
}

/// The first virtual server that needs FULLNAT, as `file:line` words.
fn needs_fullnat(config: Option<&Config>) -> Option<String> {
    let c = config?;
    c.virtual_servers
        .iter()
        .find(|vs| {
            vs.lb_kind == LbKind::FullNat
                || vs.sorry_server_lvs_method == Some(LbKind::FullNat)
                || vs.laddr_group.is_some()
        })
        .map(|vs| format!("the virtual_server at {}", vs.pos))
}

pub fn choose(requested: &str, config: Option<&Config>) -> Result<Chosen> {
    let own = |k| Ok(Chosen::Own(k));
    match requested {
        "afxdp" => own(EngineKind::AfXdp),
        "afpacket" => own(EngineKind::AfPacket),
        "none" => own(EngineKind::None),
        "kernel" => {
            if let Some(vs) = needs_fullnat(config) {
                bail!(
                    "--engine kernel: {vs} uses FULLNAT, which kernel IPVS does not have (use auto, afxdp or afpacket)"
                );
            }
            match rlvs_ipvs::client::Client::connect_loading() {
                Ok((c, loaded)) => {
                    let how = if loaded { "ip_vs loaded with modprobe" } else { "ip_vs present" };
                    tracing::info!("engine kernel: programming kernel IPVS ({how})");
                    Ok(Chosen::Kernel(Box::new(c)))
                }
                Err((_, why)) => bail!("--engine kernel: this kernel has no IP Virtual Server ({why})"),
            }
        }
        "auto" => {
            if let Some(vs) = needs_fullnat(config) {
                tracing::info!(
                    "engine auto: rlvs's own data plane, because {vs} uses FULLNAT, which kernel IPVS does not have"
                );
                return own(EngineKind::Auto);
            }
            match rlvs_ipvs::client::Client::connect_loading() {
                Ok((c, loaded)) => {
                    let how = if loaded { "ip_vs loaded with modprobe" } else { "ip_vs is present" };
                    tracing::info!("engine auto: kernel IPVS, because {how} and nothing configured needs more");
                    Ok(Chosen::Kernel(Box::new(c)))
                }
                Err((_, why)) => {
                    tracing::info!("engine auto: rlvs's own data plane, because this kernel has no IPVS ({why})");
                    own(EngineKind::Auto)
                }
            }
        }
        other => bail!("unknown engine {other:?} (auto, kernel, afxdp, afpacket or none)"),
    }
}

/// Where the ipvsadm face sends its requests, and which step of the rule
/// decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdmTable {
    Daemon,
    Kernel,
}

pub fn adm_table() -> (AdmTable, &'static str) {
    let env = std::env::var("RLVS_BACKEND").ok();
    let file = std::fs::read_to_string(RULE_FILE).ok();
    decide(env.as_deref(), file.as_deref(), kernel_has_ipvs)
}

/// The rule itself: the environment, then the file, then the kernel (only
/// asked when neither says).
fn decide(env: Option<&str>, file: Option<&str>, has_ipvs: impl FnOnce() -> bool) -> (AdmTable, &'static str) {
    let word = |v: &str| match v.split_whitespace().next() {
        Some("kernel") => Some(AdmTable::Kernel),
        Some("daemon") => Some(AdmTable::Daemon),
        _ => None,
    };
    if let Some(t) = env.and_then(word) {
        return (t, "RLVS_BACKEND");
    }
    if let Some(t) = file.and_then(word) {
        return (t, RULE_FILE);
    }
    if has_ipvs() {
        (AdmTable::Kernel, "this kernel has ip_vs")
    } else {
        (AdmTable::Daemon, "this kernel has no ip_vs")
    }
}

/// ip_vs loaded or built in (/sys/module/ip_vs), or a module of the
/// running kernel that modprobe would load. Read, never loaded: deciding
/// must not change the host.
pub fn kernel_has_ipvs() -> bool {
    if std::path::Path::new("/sys/module/ip_vs").exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let dir = format!("/lib/modules/{}", release.trim());
    ["modules.dep", "modules.builtin"].iter().any(|f| {
        std::fs::read_to_string(format!("{dir}/{f}")).is_ok_and(|t| {
            t.lines().any(|l| l.split(':').next().is_some_and(|m| m.ends_with("/ip_vs.ko") || m.contains("/ip_vs.ko.")))
        })
    })
}

/// A daemon on its own data plane where `rlvs adm` would read the kernel's
/// table: say so at start, with the way to change it.
pub fn warn_if_adm_reads_elsewhere(chosen: &Chosen) {
    if let Chosen::Own(k) = chosen {
        if *k != EngineKind::None {
            if let (AdmTable::Kernel, why) = adm_table() {
                tracing::warn!(
                    "rlvs adm and ipvsadm in this namespace answer from kernel IPVS ({why}), not from this daemon: \
                     set RLVS_BACKEND=daemon or write \"daemon\" to {RULE_FILE}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_then_the_file_then_the_kernel_decide() {
        let never = || -> bool { panic!("the kernel was asked although the rule was already decided") };
        assert_eq!(decide(Some("kernel"), Some("daemon"), never), (AdmTable::Kernel, "RLVS_BACKEND"));
        assert_eq!(decide(Some("daemon"), None, never), (AdmTable::Daemon, "RLVS_BACKEND"));
        assert_eq!(decide(None, Some("kernel\n"), never), (AdmTable::Kernel, RULE_FILE));
        assert_eq!(decide(Some("bogus"), Some("daemon # chosen by the package"), never).0, AdmTable::Daemon);
        assert_eq!(decide(None, None, || true).0, AdmTable::Kernel);
        assert_eq!(decide(None, Some(""), || false).0, AdmTable::Daemon);
    }
}
