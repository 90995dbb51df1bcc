//! The checker side's keepalived_check.data: global definitions, the LVS
//! topology with each real server's state, and every health checker.

use crate::check::setup::{kind_name, CheckerRt, VsRt};
use rlvs_conf::model::{self as m, GlobalDefs, LbKind, VsProtocol, VsTarget};
use std::fmt::Write;

fn on_off(b: bool) -> &'static str {
    if b {
        "ON"
    } else {
        "OFF"
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn method(k: LbKind) -> &'static str {
    match k {
        LbKind::Nat => "NAT",
        LbKind::Dr => "DR",
        LbKind::Tun => "TUN",
        LbKind::FullNat => "FNAT",
    }
}

pub fn check_data(g: &GlobalDefs, vss: &[VsRt], checkers: &[CheckerRt]) -> String {
    let mut o = super::global_defs(g, false);
    o += "------< LVS Topology >------\n System is compiled with LVS v1.2.1\n";
    for (vi, v) in vss.iter().enumerate() {
        virtual_server(&mut o, vi, v, checkers);
    }
    o += "------< Health checkers >------\n";
    for c in checkers.iter().filter(|c| !c.retired) {
        checker(&mut o, &vss[c.vs], c);
    }
    o
}

fn virtual_server(o: &mut String, vi: usize, v: &VsRt, checkers: &[CheckerRt]) {
    let vs = &v.model;
    o.push_str(" ------< Virtual server >------\n");
    let v6 = match &vs.target {
        VsTarget::Addr { addr, port } => {
            let _ = writeln!(o, " VS VIP = {addr}, VPORT = {port}");
            addr.is_ipv6()
        }
        VsTarget::Fwmark(f) => {
            let _ = writeln!(o, " VS FWMARK = {f}");
            vs.ip_family == Some(6)
        }
        VsTarget::Group(gname) => {
            let _ = writeln!(o, " VS GROUP = {gname}");
            vs.ip_family == Some(6)
        }
    };
    let mut w = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    w(format!("   Address family = {}", if v6 { "inet6" } else { "inet" }));
    w("   connection timeout = 5.000000".into());
    w(format!("   delay_loop = {:.6}", vs.delay_loop.as_secs_f64()));
    w(format!("   lvs_sched = {}", vs.lb_algo));
    for (flag, name) in [("sh-fallback", "flag-1"), ("sh-port", "flag-2"), ("flag-3", "flag-3")] {
        let set = vs.sched_flags.iter().any(|f| f == flag || f == name);
        if name == "flag-1" {
            w(format!("   Hashed = {}", if set { "enabled" } else { "disabled" }));
        }
        w(format!("   {name} = {}", if set { "enabled" } else { "disabled" }));
    }
    w(format!("   One packet scheduling = {}", if vs.ops { "enabled" } else { "disabled" }));
    if let Some(t) = vs.persistence_timeout {
        w(format!("   persistence timeout = {t}"));
    }
    if let Some(g) = vs.persistence_granularity {
        w(format!("   persistence granularity = {g}"));
    }
    let proto = match vs.protocol {
        VsProtocol::Tcp => "TCP",
        VsProtocol::Udp => "UDP",
        VsProtocol::Sctp => "SCTP",
    };
    w(format!("   protocol = {proto}"));
    w(format!("   alpha is {}", on_off(vs.alpha)));
    w(format!("   omega is {}", on_off(vs.omega)));
    w(format!("   Inhibit on failure is {}", on_off(vs.inhibit_on_failure)));
    w(format!("   quorum = {}, hysteresis = {}", vs.quorum, vs.hysteresis));
    w("   Using smtp notification = no".into());
    if let Some((addr, port)) = vs.sorry_server {
        w(format!("   sorry server = [{addr}]:{port}"));
    }
    w(format!("   default forwarding method = {}", method(vs.lb_kind)));
    let alive = v.pool.rs.iter().any(|r| r.alive());
    w(format!("   alive = {}", u8::from(alive)));
    w(format!("   quorum_state_up = {}", u8::from(v.pool.quorum_up())));
    w("   reloaded = 0".into());
    for (i, r) in vs.real_servers.iter().enumerate() {
        let Some(state) = v.pool.rs.get(i) else { continue };
        let timing = checkers.iter().find(|c| c.vs == vi && c.rs == i && !c.retired).map(|c| c.model.timing);
        let weight = r.weight;
        w("   ------< Real server >------".into());
        w(format!("   RIP = {}, RPORT = {}, WEIGHT = {weight} EFF WEIGHT = {weight}", r.addr, r.port));
        w(format!("   forwarding method = {}", method(r.lvs_method)));
        w(format!("   Alpha is {}", on_off(r.alpha)));
        let (ct, dl, dbr) = timing.map_or((5.0, vs.delay_loop.as_secs_f64(), vs.delay_loop.as_secs_f64()), |t| {
            (t.connect_timeout.as_secs_f64(), t.delay_loop.as_secs_f64(), t.delay_before_retry.as_secs_f64())
        });
        w(format!("   connection timeout = {ct:.6}"));
        w(format!("   connection limit range = {} -> {}", r.lthreshold.unwrap_or(0), r.uthreshold.unwrap_or(0)));
        w(format!("   Delay loop = {dl:.6}"));
        w(format!("   Retry delay = {dbr:.6}"));
        w(format!("   Inhibit on failure is {}", on_off(r.inhibit_on_failure)));
        w("   Using smtp notification = yes".into());
        w(format!("   initial weight = {weight}"));
        w(format!("   effective weight = {weight}"));
        w("   previous effective_weight = 0".into());
        w(format!("   alive = {}", u8::from(state.alive())));
        w(format!("   num failed checkers = {}", state.failed_checkers()));
        w(format!("   RS set = {}", u8::from(state.in_table())));
        w("   reloaded = 0".into());
    }
}

fn checker(o: &mut String, v: &VsRt, c: &CheckerRt) {
    let rs = &v.pool.rs[c.rs];
    let t = &c.model.timing;
    let mut w = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    w(format!(" {} -> {}", v.pool.name, rs.name));
    w("   Enabled = yes".into());
    w(format!("   Up = {}", yes_no(c.core.is_up())));
    w(format!("   Has run = {}", yes_no(c.core.has_run())));
    w("   Current weight = 0".into());
    w(format!("   Alpha = {}", yes_no(c.model.alpha)));
    w(format!("   Delay loop = {} us", t.delay_loop.as_micros()));
    w(format!("   Warmup = {} us", t.warmup.as_micros()));
    w(format!("   Retries = {}", t.retry));
    w(format!("   Delay before retry = {} us", t.delay_before_retry.as_micros()));
    w(format!("   Retries iterations = {}", c.core.retries_used()));
    w(format!("   Default delay before retry = {} us", t.delay_before_retry.as_micros()));
    w(format!("   Log all failures = {}", yes_no(c.model.log_all_failures)));
    let model_rs = &v.model.real_servers[c.rs];
    let dest_addr = c.model.connect_ip.unwrap_or(model_rs.addr);
    let dest_port = c.model.connect_port.unwrap_or(model_rs.port);
    if !matches!(c.model.kind, m::CheckKind::Misc(_) | m::CheckKind::File { .. }) {
        w("   Connection".into());
        w(format!("     Dest = [{dest_addr}]:{dest_port}"));
        if let Some(b) = c.model.bindto {
            w(format!("     Bind to = [{b}]:{}", c.model.bind_port.unwrap_or(0)));
        }
        w(format!("     Timeout = {:.6}", t.connect_timeout.as_secs_f64()));
    }
    match &c.model.kind {
        m::CheckKind::Http(h) => {
            w(format!(
                "   Keepalive method = {}, http protocol {}",
                kind_name(&c.model.kind),
                h.http_protocol.as_deref().unwrap_or("1.0")
            ));
            w(format!("   Enable SNI {}", if h.enable_sni { "set" } else { "unset" }));
            if let Some(vh) = &h.virtualhost {
                w(format!("   Virtualhost = {vh}"));
            }
            w(format!("   Fast recovery {}", if h.fast_recovery { "set" } else { "unset" }));
            for u in &h.urls {
                w(format!("   Checked url = {}", u.path));
                if let Some(d) = &u.digest {
                    w(format!("     digest = {d}"));
                }
                if !u.status_codes.is_empty() {
                    w("     HTTP Status Code(s)".into());
                    for (lo, hi) in &u.status_codes {
                        if lo == hi {
                            w(format!("       {lo}"));
                        } else {
                            w(format!("       {lo}-{hi}"));
                        }
                    }
                }
            }
            if let Some(u) = c.core.failed_url().and_then(|i| h.urls.get(i)) {
                w(format!("   Failed URL = {}", u.path));
            }
        }
        other => w(format!("   Keepalive method = {}", kind_name(other))),
    }
}
