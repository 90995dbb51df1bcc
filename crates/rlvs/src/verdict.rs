//! What keepalived 2.2.7 checks at load time against the host rather than
//! the file, for `-t` and for a start: interfaces that do not exist, the
//! script user, scripts that cannot run, and script security. The file's
//! own problems are crates/conf's; these need the machine.

use crate::vrrp::scripts::{self, Refused};
use rlvs_conf::model::{Config, Notifies, NotifyScript};

/// The host's verdict on a configuration.
#[derive(Debug, Default)]
pub struct HostVerdict {
    /// keepalived's messages, as rlvs prints diagnostics.
    pub lines: Vec<String>,
    /// Something keepalived reports as a configuration error (exit 5).
    pub errors: bool,
    /// A SECURITY VIOLATION (keepalived -t exits 6).
    pub security: bool,
    /// An interface is missing (keepalived's VRRP process stops on it).
    pub missing_interface: bool,
}

pub fn check(c: &Config) -> HostVerdict {
    let mut v = HostVerdict::default();
    interfaces(c, &mut v);
    let g = &c.global;
    if g.script_user.as_ref().is_some_and(|u| scripts::lookup_user(&u.user).is_none()) {
        warn(&mut v, g.script_user_pos.as_ref(), "Error setting global script uid/gid".into());
    }
    if !c.instances.is_empty() {
        vrrp_scripts(c, &mut v);
    }
    if !c.virtual_servers.is_empty() {
        check_scripts(c, &mut v);
    }
    v
}

fn warn(v: &mut HostVerdict, pos: Option<&rlvs_conf::Pos>, msg: String) {
    v.lines.push(match pos {
        Some(p) => format!("{p}: warning: {msg}"),
        None => format!("warning: {msg}"),
    });
    v.errors = true;
}

fn interfaces(c: &Config, v: &mut HostVerdict) {
    let exists = |n: &str| rlvs_dataplane::iface::index_of(n).is_some();
    let mut missing = false;
    for i in &c.instances {
        if let Some((ifname, pos)) = &i.interface {
            if !exists(ifname) {
                missing = true;
                warn(v, Some(pos), format!("WARNING - interface {ifname} for vrrp_instance {} doesn't exist", i.name));
            }
        }
        for a in i.vips.iter().chain(&i.excluded_vips) {
            if let Some(dev) = a.dev.as_deref().filter(|d| !exists(d)) {
                missing = true;
                let msg = format!("WARNING - interface {dev} for ip address {}/{} doesn't exist", a.addr, a.prefix);
                warn(v, Some(&a.pos), msg);
            }
        }
        for t in i.track_interfaces.iter().filter(|t| !exists(&t.name)) {
            missing = true;
            warn(v, Some(&t.pos), format!("({}) tracked interface {} doesn't exist", i.name, t.name));
        }
    }
    if missing {
        v.lines.push("Non-existent interface specified in configuration".into());
        v.missing_interface = true;
        return;
    }
    for i in c.instances.iter().filter(|i| i.unicast_peers.is_empty()) {
        let Some((ifname, pos)) = &i.interface else { continue };
        if !supports_multicast(ifname) {
            let m = format!(
                "({}) interface {ifname} does not support multicast, specify unicast peers - disabling",
                i.name
            );
            warn(v, Some(pos), m);
        }
    }
}

/// IFF_MULTICAST in the interface's flags (a tunnel or point-to-point link
/// may lack it; then VRRP must be unicast).
fn supports_multicast(ifname: &str) -> bool {
    const IFF_MULTICAST: u32 = 0x1000;
    std::fs::read_to_string(format!("/sys/class/net/{ifname}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_none_or(|flags| flags & IFF_MULTICAST != 0)
}

fn notifies(n: &Notifies) -> impl Iterator<Item = &NotifyScript> {
    [&n.master, &n.backup, &n.fault, &n.stop, &n.deleted, &n.any, &n.master_rx_lower_pri].into_iter().flatten()
}

/// What checking one script found: whether it is one that will run (for
/// the security verdict), and whether it is insecure.
#[derive(Default)]
struct Scripts {
    any: bool,
    insecure: bool,
}

impl Scripts {
    fn see(&mut self, r: &Result<(scripts::Runnable, bool), Refused>) {
        if let Ok((_, insecure)) = r {
            self.any = true;
            self.insecure |= insecure;
        }
    }
}

fn violation(v: &mut HostVerdict, c: &Config, seen: &Scripts, what: &str) {
    if c.global.enable_script_security || !seen.any {
        return;
    }
    let tail = if seen.insecure { " There are insecure scripts." } else { "" };
    v.lines.push(format!(
        "warning: SECURITY VIOLATION - {what}scripts are being executed but script_security not enabled.{tail}"
    ));
    v.security = true;
}

fn vrrp_scripts(c: &Config, v: &mut HostVerdict) {
    let g = &c.global;
    let security = g.enable_script_security;
    let default_user_bad = g.script_user.as_ref().is_some_and(|u| scripts::lookup_user(&u.user).is_none());
    let mut seen = Scripts::default();
    let mut removed = Vec::new();
    for s in &c.scripts {
        if s.user.is_none() && default_user_bad {
            warn(v, Some(&s.end), format!("Unable to set default user for vrrp script {} - removing", s.name));
            removed.push(s.name.as_str());
            continue;
        }
        if s.user.as_ref().is_some_and(|u| scripts::lookup_user(&u.user).is_none()) {
            warn(
                v,
                s.user_pos.as_ref(),
                format!("Unable to set uid/gid for script {}", crate::dumps::cmd_str(&s.script)),
            );
            removed.push(s.name.as_str());
            continue;
        }
        let r = scripts::prepare(&s.script, s.user.as_ref(), g.script_user.as_ref(), security);
        match &r {
            Err(Refused::NotFound(_) | Refused::NotExecutable(_)) => {
                warn(v, None, format!("Disabling track script {} since not found/accessible", s.name))
            }
            Err(Refused::Insecure(_)) => warn(v, None, format!("Disabling track script {} due to insecure", s.name)),
            _ => {}
        }
        seen.see(&r);
    }
    for i in &c.instances {
        for t in i.track_scripts.iter().filter(|t| removed.contains(&t.name.as_str())) {
            warn(v, Some(&t.pos), format!("({}) track script {} not found, ignoring...", i.name, t.name));
        }
    }
    let notify = c
        .instances
        .iter()
        .flat_map(|i| notifies(&i.notify))
        .chain(c.sync_groups.iter().flat_map(|s| notifies(&s.notify)));
    for n in notify {
        seen.see(&scripts::prepare(&n.command, n.user.as_ref(), g.script_user.as_ref(), security));
    }
    violation(v, c, &seen, "");
}

fn check_scripts(c: &Config, v: &mut HostVerdict) {
    let g = &c.global;
    let mut seen = Scripts::default();
    let prep = |argv: &[String], user| scripts::prepare(argv, user, g.script_user.as_ref(), g.enable_script_security);
    let default_user_bad = g.script_user.as_ref().is_some_and(|u| scripts::lookup_user(&u.user).is_none());
    for vs in &c.virtual_servers {
        for n in vs.quorum_up.iter().chain(&vs.quorum_down) {
            seen.see(&prep(&n.command, n.user.as_ref()));
        }
        for rs in &vs.real_servers {
            for n in rs.notify_up.iter().chain(&rs.notify_down) {
                seen.see(&prep(&n.command, n.user.as_ref()));
            }
            for ck in &rs.checkers {
                if let rlvs_conf::model::CheckKind::Misc(m) = &ck.kind {
                    if m.user.is_none() && default_user_bad {
                        let cmd = crate::dumps::cmd_str(&m.path);
                        warn(v, m.end.as_ref(), format!("Unable to set default user for misc script {cmd} - removing"));
                        continue;
                    }
                    if m.user.as_ref().is_some_and(|u| scripts::lookup_user(&u.user).is_none()) {
                        let cmd = crate::dumps::cmd_str(&m.path);
                        warn(
                            v,
                            m.user_pos.as_ref(),
                            format!("Failed to set uid/gid for misc checker script {cmd} - removing"),
                        );
                        continue;
                    }
                    seen.see(&prep(&m.path, m.user.as_ref()));
                }
            }
        }
    }
    violation(v, c, &seen, "check ");
}
