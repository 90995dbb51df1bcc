//! `------< Global definitions >------`, as each keepalived process
//! prints its own global data (dump_global_data in 2.2.7): the VRRP
//! process resolves the defaults it uses, the checker process does not.

use rlvs_conf::model::{FlushOnStop, GlobalDefs};

const UNSET: u32 = u32::MAX;

pub fn global_defs(g: &GlobalDefs, vrrp_side: bool) -> String {
    let mut o = Vec::<String>::new();
    let mut w = |s: String| o.push(s);
    let host = super::hostname();
    w("------< Global definitions >------".into());
    w(" Network namespace = (default)".into());
    w(" Network namespace ipvs = (main namespace)".into());
    w(format!(" Router ID = {}", g.router_id.clone().unwrap_or_else(|| host.clone())));
    let e = &g.email;
    if let Some((addr, port)) = e.smtp_server {
        w(format!(" Smtp server = {addr}"));
        w(format!(" Smtp server port = {port}"));
    }
    // keepalived fills the HELO name, timeout and sender in only for an
    // SMTP server; a value set in the file is shown whatever.
    let smtp = e.smtp_server.is_some();
    if let Some(h) = e.helo_name.clone().or_else(|| smtp.then(|| host.clone())) {
        w(format!(" Smtp HELO name = {h}"));
    }
    if let Some(t) = e.connect_timeout.or(smtp.then_some(30)) {
        w(format!(" Smtp server connection timeout = {t}"));
    }
    if let Some(from) = e.from.clone().or_else(|| smtp.then(|| format!("keepalived@{host}"))) {
        w(format!(" Email notification from = {from}"));
        w(" Email notification to:".into());
        for to in &e.to {
            w(format!("   {to}"));
        }
    }
    for what in ["smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker"] {
        w(format!(" Default {what} = unset"));
    }
    w(format!(" Checkers log all failures = {}", g.checker_log_all_failures));
    w(" No test config before reload".into());
    w(format!(" Dynamic interfaces = {}", g.dynamic_interfaces));
    if let Some((tcp, fin, udp)) = g.lvs_timeouts {
        // keepalived labels the UDP timeout "TCP" too.
        for (v, label) in [(tcp, "TCP"), (fin, "TCP FIN"), (udp, "TCP")] {
            if let Some(v) = v.filter(|v| *v != 0) {
                w(format!(" LVS {label} timeout = {v}"));
            }
        }
    }
    if vrrp_side {
        w(format!(" Default interface = {}", g.default_interface.as_deref().unwrap_or("eth0")));
    }
    w(" Disable local IGMP = no".into());
    if let Some(s) = &g.lvs_sync_daemon {
        if let Some(i) = &s.instance {
            w(format!(" LVS syncd vrrp instance = {i}"));
        }
        w(format!(" LVS syncd interface = {}", s.interface));
        w(format!(" LVS syncd syncid = {}", s.syncid.unwrap_or(0)));
        if let Some(m) = s.maxlen {
            w(format!(" LVS syncd maxlen = {m}"));
        }
        if let Some(a) = s.group {
            w(format!(" LVS mcast group {a}"));
        }
        if let Some(p) = s.port {
            w(format!(" LVS syncd mcast port = {p}"));
        }
        if let Some(t) = s.ttl {
            w(format!(" LVS syncd mcast ttl = {t}"));
        }
    }
    w(format!(" LVS flush = {}", g.lvs_flush));
    let flush = match g.lvs_flush_on_stop {
        Some(FlushOnStop::All) => "full",
        Some(FlushOnStop::Vs) => "VS",
        None => "disabled",
    };
    w(format!(" LVS flush on stop = {flush}"));
    w(" FIFO write vrrp states on reload = false".into());
    w(format!(" VRRP notify priority changes = {}", g.notify_priority_changes));
    w(format!(" VRRP IPv4 mcast group = {}", g.mcast_group4));
    w(format!(" VRRP IPv6 mcast group = {}", g.mcast_group6));
    let garp = &g.garp;
    w(format!(" Gratuitous ARP delay = {}", garp.master_delay.as_secs()));
    w(format!(" Gratuitous ARP repeat = {}", garp.master_repeat));
    w(format!(" Gratuitous ARP refresh timer = {}", garp.master_refresh.as_secs()));
    w(format!(" Gratuitous ARP refresh repeat = {}", garp.master_refresh_repeat));
    // The VRRP process fills the lower-priority settings from the master
    // ones; the checker process prints them unset.
    let (lp_delay, lp_rep) = match (garp.lower_prio_delay, garp.lower_prio_repeat, vrrp_side) {
        (d, r, true) => {
            (d.map_or(garp.master_delay.as_secs() as u32, |d| d.as_secs() as u32), r.unwrap_or(garp.master_repeat))
        }
        (d, r, false) => (d.map_or(UNSET, |d| d.as_secs() as u32), r.unwrap_or(UNSET)),
    };
    w(format!(" Gratuitous ARP lower priority delay = {lp_delay}"));
    w(format!(" Gratuitous ARP lower priority repeat = {lp_rep}"));
    w(format!(" Num adverts before down = {}", g.down_timer_adverts));
    w(" Gratuitous ARP for each secondary VMAC = 0s".into());
    w(format!(" Send advert after receive lower priority advert = {}", !g.lower_prio_no_advert));
    w(format!(" Send advert after receive higher priority advert = {}", g.higher_prio_send_advert));
    w(format!(" Gratuitous ARP interval = {:.6}", g.garp_interval.as_secs_f64()));
    w(format!(" Gratuitous NA interval = {:.6}", g.gna_interval.as_secs_f64()));
    w(format!(" VRRP default protocol version = {}", g.version));
    w(" nftables without counters".into());
    w(" libnftnl version 1.2.3".into());
    w(format!(" VRRP check unicast_src = {}", g.check_unicast_src));
    w(format!(" VRRP skip check advert addresses = {}", g.skip_check_adv_addr));
    w(format!(" VRRP strict mode = {}", g.strict));
    w(" Max auto priority = 0".into());
    w(" Min auto priority delay = 1000000 usecs".into());
    for p in ["VRRP", "Checker", "BFD"] {
        w(format!(" {p} process priority = 0"));
        w(format!(" {p} don't swap = false"));
        w(format!(" {p} realtime priority = 0"));
        w(format!(" {p} realtime limit = 10000"));
    }
    for s in ["vrrp", "checker", "RFCv2", "RFCv3", "traps"] {
        w(format!(" SNMP {s} disabled"));
    }
    w(" SNMP socket = default (unix:/var/agentx/master)".into());
    w(" DBus disabled".into());
    w(" DBus service name = ".into());
    w(format!(" Script security {}", if g.enable_script_security { "enabled" } else { "disabled" }));
    let (uid, gid) = g.script_user.as_ref().and_then(|u| ids_of(&u.user, u.group.as_deref())).unwrap_or((0, 0));
    w(format!(" Default script uid:gid {uid}:{gid}"));
    for n in ["vrrp_netlink_cmd", "vrrp_netlink_monitor", "process_monitor", "lvs_netlink_cmd", "lvs_netlink_monitor"] {
        w(format!(" {n}_rcv_bufs = 0"));
        w(format!(" {n}_rcv_bufs_force = 0"));
    }
    w(format!(" rs_init_notifies = {}", u8::from(g.rs_init_notifies)));
    w(" no_checker_emails = 0".into());
    w(" rx_bufs_multiples = 3".into());
    w(" umask = 0177".into());
    let mut s = o.join("\n");
    s.push('\n');
    s
}

/// A user's uid and gid (or the named group's), as the system says.
fn ids_of(user: &str, group: Option<&str>) -> Option<(u32, u32)> {
    let user = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam takes a NUL-terminated name; its result is read at
    // once, before any other call could reuse its storage.
    let pw = unsafe { libc::getpwnam(user.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    let (uid, mut gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    if let Some(g) = group.and_then(|g| std::ffi::CString::new(g).ok()) {
        // SAFETY: as above, for getgrnam.
        let gr = unsafe { libc::getgrnam(g.as_ptr()) };
        if !gr.is_null() {
            gid = unsafe { (*gr).gr_gid };
        }
    }
    Some((uid, gid))
}
