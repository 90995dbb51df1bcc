//! The VRRP side's keepalived.data (global definitions, VRRP topology,
//! socket pool, interfaces) and keepalived.json, as 2.2.7 writes them.

use super::ctime_us;
use crate::vrrp::setup::{link_id, Runtime, Setup};
use crate::vrrp::Status;
use rlvs_conf::model::{Scope, Vip};
use std::fmt::Write;

/// `10.0.0.100/24 dev bond0 scope global label bond0:0`, keepalived's
/// format_ipaddress.
fn vip_text(v: &Vip, r: &Runtime) -> String {
    let host = if v.addr.is_ipv4() { 32 } else { 128 };
    let mut s = if v.prefix == host { v.addr.to_string() } else { format!("{}/{}", v.addr, v.prefix) };
    if let Some(b) = v.brd {
        let _ = write!(s, " brd {b}");
    }
    let _ = write!(s, " dev {}", v.dev.as_deref().unwrap_or(&r.interface));
    let scope = match v.scope {
        None | Some(Scope::Global) => "global".to_string(),
        Some(Scope::Site) => "site".into(),
        Some(Scope::Link) => "link".into(),
        Some(Scope::Host) => "host".into(),
        Some(Scope::Nowhere) => "nowhere".into(),
        Some(Scope::Other(n)) => n.to_string(),
    };
    let _ = write!(s, " scope {scope}");
    if let Some(l) = &v.label {
        let _ = write!(s, " label {l}");
    }
    if let Some(p) = v.peer {
        let _ = write!(s, " peer {p}");
    }
    s
}

fn password(r: &Runtime) -> Option<String> {
    r.core.auth_pass.map(|p| {
        let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
        String::from_utf8_lossy(&p[..end]).into_owned()
    })
}

/// keepalived's cmd_str: every word quoted, but a leading redirection.
pub fn cmd_str(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| if i == 0 && (w.starts_with('<') || w.starts_with('>')) { w.clone() } else { format!("'{w}'") })
        .collect();
    quoted.join(" ")
}

/// The command as keepalived runs it: its program's real path, found on
/// PATH for a bare name (keepalived resolves it when it loads the file).
fn resolved(words: &[String]) -> Vec<String> {
    let mut w = words.to_vec();
    if let Some(first) = w.first_mut() {
        let found = if first.contains('/') {
            Some(std::path::PathBuf::from(first.as_str()))
        } else {
            let path = std::env::var("PATH").unwrap_or_default();
            path.split(':').map(|d| std::path::Path::new(d).join(first.as_str())).find(|p| p.is_file())
        };
        if let Some(real) = found.and_then(|p| crate::vrrp::scripts::real_path(&p)) {
            *first = real.to_string_lossy().into_owned();
        }
    }
    w
}

/// `script_ok`: each vrrp_script's last verdict (absent: none yet).
pub fn vrrp_data(setup: &Setup, status: &[Status], script_ok: &std::collections::HashMap<String, bool>) -> String {
    let mut o = super::global_defs(&setup.global, true);
    o += "------< VRRP Topology >------\n";
    for (r, st) in setup.instances.iter().zip(status) {
        instance(&mut o, r, st);
    }
    o += "------< VRRP Sockpool >------\n";
    let mut pools: Vec<(&str, bool)> = Vec::new();
    for r in &setup.instances {
        if !pools.contains(&(r.interface.as_str(), r.v6)) {
            pools.push((r.interface.as_str(), r.v6));
        }
    }
    for (ifname, v6) in pools {
        let unicast = setup.instances.iter().any(|r| r.interface == ifname && !r.core.unicast_peers.is_empty());
        o += " fd_in 0 fd_out = 0\n";
        let _ = writeln!(o, "   Interface = {ifname}");
        let _ = writeln!(o, "   Family = {}", if v6 { "IPv6" } else { "IPv4" });
        o += "   Protocol = VRRP\n";
        let _ = writeln!(o, "   Type = {}", if unicast { "Unicast" } else { "Multicast" });
        if unicast {
            let src = setup.instances.iter().find(|r| r.interface == ifname && r.v6 == v6).and_then(|r| r.unicast_src);
            if let Some(a) = src {
                let _ = writeln!(o, "   Address = {a}");
            }
        }
        o += "   Rx buf size = 0\n   VRRP instances\n";
        for r in setup.instances.iter().filter(|r| r.interface == ifname && r.v6 == v6) {
            let _ = writeln!(o, "     {} vrid {}", r.core.name, r.core.vrid);
        }
    }
    if !setup.scripts.is_empty() {
        o += "------< VRRP Scripts >------\n";
    }
    for sc in &setup.scripts {
        let good = script_ok.get(&sc.name).copied();
        let _ = writeln!(o, " VRRP Script = {}", sc.name);
        let _ = writeln!(o, "   Command = {}", cmd_str(&resolved(&sc.script)));
        let _ = writeln!(o, "   Interval = {} sec", sc.interval.as_secs());
        let _ = writeln!(o, "   Timeout = {} sec", sc.timeout.unwrap_or_default().as_secs());
        let _ = writeln!(o, "   Weight = {}{}", sc.weight, if sc.weight_reverse { " reverse" } else { "" });
        let _ = writeln!(o, "   Rise = {}", sc.rise);
        let _ = writeln!(o, "   Fall = {}", sc.fall);
        // keepalived's result counts towards rise (GOOD) or fall.
        let result = match good {
            Some(true) => sc.rise + sc.fall - 1,
            Some(false) => 0,
            None if sc.init_fail => 0,
            None => sc.rise.saturating_sub(1),
        };
        let _ = writeln!(o, "   Result = {result}");
        o += "   Insecure = no\n";
        let _ = writeln!(o, "   Init state = {}", if good.is_some() { "unknown" } else { "INIT" });
        let _ = writeln!(o, "   Status = {}", if good == Some(true) { "GOOD" } else { "BAD" });
        o += "   Script uid:gid = 0:0\n   VRRP instances :\n   Tracking instances :\n";
        let id = crate::vrrp::setup::script_id(&sc.name);
        for r in &setup.instances {
            for t in r.tracks.iter().filter(|t| t.id == id) {
                let _ =
                    writeln!(o, "     {}, weight {}{}", r.core.name, t.weight, if t.reverse { " reverse" } else { "" });
            }
        }
        o += "   State = idle\n";
    }
    o += "------< Interfaces >------\n";
    interfaces(&mut o, setup);
    o
}

fn instance(o: &mut String, r: &Runtime, st: &Status) {
    let c = &r.core;
    let mut w = |s: String| {
        o.push_str(&s);
        o.push('\n');
    };
    w(format!(" VRRP Instance = {}", c.name));
    w(format!("   VRRP Version = {}", c.version));
    if r.v6 {
        w("   Using Native IPv6".into());
    }
    w(format!("   State = {}", st.state));
    if st.state == "BACKUP" {
        w(format!("   Master router = {}", st.master_src.map_or("(none)".into(), |a| a.to_string())));
        w(format!("   Master priority = {}", st.master_priority));
    }
    if c.unicast_peers.is_empty() {
        w("   Flags: none".into());
    } else {
        w("   Flags:".into());
        w("     Using unicast".into());
    }
    w(format!("   Wantstate = {}", st.wantstate));
    w("   Number of config faults = 0".into());
    w(format!("   Number of interface and track script faults = {}", u8::from(st.state == "FAULT")));
    w("   Number of track scripts init = 0".into());
    w(format!("   Last transition = {}", ctime_us(st.last_transition)));
    w(format!("   Read timeout = {}", ctime_us(st.read_timeout)));
    w(format!("   Master down timer = {} usecs", st.master_down_timer.as_micros()));
    w(format!("   Interface = {}", r.interface));
    if r.dont_track_primary {
        w("   VRRP interface tracking disabled".into());
    }
    if c.skip_check_adv_addr {
        w("   Skip checking advert IP addresses".into());
    }
    w(format!(
        "   Using src_ip = {}{}",
        st.source.or(r.unicast_src).map_or("(none)".into(), |a| a.to_string()),
        if r.unicast_src.is_some() { " (from configuration)" } else { "" }
    ));
    if c.unicast_peers.is_empty() {
        w(format!("   Multicast address {}", r.mcast_group));
    }
    let g = &c.garp;
    w(format!("   Gratuitous ARP delay = {}", g.delay.as_secs()));
    w(format!("   Gratuitous ARP repeat = {}", g.repeat));
    w(format!("   Gratuitous ARP refresh = {}", g.refresh.as_secs()));
    w(format!("   Gratuitous ARP refresh repeat = {}", g.refresh_repeat));
    w(format!("   Gratuitous ARP lower priority delay = {}", g.lower_prio_delay.unwrap_or(g.delay).as_secs()));
    w(format!("   Gratuitous ARP lower priority repeat = {}", g.lower_prio_repeat.unwrap_or(g.repeat)));
    w(format!("   Down timer adverts = {}", c.down_timer_adverts));
    w(format!("   Send advert after receive lower priority advert = {}", !c.lower_prio_no_advert));
    w(format!("   Send advert after receive higher priority advert = {}", c.higher_prio_send_advert));
    w(format!("   Virtual Router ID = {}", c.vrid));
    w(format!("   Priority = {}", c.priority));
    w(format!("   Effective priority = {}", st.effective_priority));
    w(format!("   Total priority = {}", st.effective_priority));
    let adv = c.advert_int;
    if adv.subsec_millis() == 0 {
        w(format!("   Advert interval = {} sec", adv.as_secs()));
    } else {
        w(format!("   Advert interval = {} milli-sec", adv.as_millis()));
    }
    w(format!("   Accept = {}", if r.accept { "enabled" } else { "disabled" }));
    w(format!("   Preempt = {}", if c.nopreempt { "disabled" } else { "enabled" }));
    if !c.preempt_delay.is_zero() {
        w(format!("   Preempt delay = {} secs", c.preempt_delay.as_secs_f64()));
    }
    w("   Promote_secondaries = disabled".into());
    match password(r) {
        Some(p) => {
            w("   Authentication type = SIMPLE_PASSWORD".into());
            w(format!("   Password = {p}"));
        }
        None if c.version == 2 => w("   Authentication type = none".into()),
        None => {}
    }
    let vips: Vec<&Vip> = r.addresses.iter().filter(|v| c.vips.contains(&v.addr)).collect();
    if !vips.is_empty() {
        w(format!("   Virtual IP ({}):", vips.len()));
        for v in &vips {
            w(format!("     {}{}", vip_text(v, r), if st.vips_set { " set" } else { "" }));
        }
    }
    let excluded: Vec<&Vip> = r.addresses.iter().filter(|v| !c.vips.contains(&v.addr)).collect();
    if !excluded.is_empty() {
        w("   Virtual IP Excluded :".into());
        for v in excluded {
            w(format!("     {}{}", vip_text(v, r), if st.vips_set { " set" } else { "" }));
        }
    }
    if !c.unicast_peers.is_empty() {
        w(format!("   Unicast TTL = {}", r.unicast_ttl));
        w(format!("   Check unicast src : {}", if c.check_unicast_src { "yes" } else { "no" }));
        w("   Unicast Peer :".into());
        for p in &c.unicast_peers {
            w(format!("     {} min_ttl {} max_ttl {}", p.addr, p.min_ttl, p.max_ttl));
        }
        w("   Unicast checksum compatibility = no".into());
    }
    w("   fd_in 0, fd_out 0".into());
    let tracked = |prefix: &str| -> Vec<String> {
        r.tracks
            .iter()
            .filter_map(|t| {
                let name = t.id.strip_prefix(prefix)?;
                (prefix != "if:" || name != r.interface)
                    .then(|| format!("     {name} weight {}{}", t.weight, if t.reverse { " reverse" } else { "" }))
            })
            .collect()
    };
    let (ifs, scripts) = (tracked("if:"), tracked("script:"));
    if !ifs.is_empty() {
        w("   Tracked interfaces :".into());
        ifs.into_iter().for_each(&mut w);
    }
    if !scripts.is_empty() {
        w("   Tracked scripts :".into());
        scripts.into_iter().for_each(&mut w);
    }
    w("   Using smtp notification = no".into());
    w("   Notify deleted = Fault".into());
    w(format!("   Notify priority changes = {}", false));
}

/// Every interface of the namespace, as keepalived's dump_if shows it.
fn interfaces(o: &mut String, setup: &Setup) {
    let Ok(mut rtnl) = rlvs_dataplane::netlink::Rtnl::new() else { return };
    let Ok(mut links) = rtnl.links() else { return };
    links.sort_by_key(|l| l.ifindex);
    for l in links {
        let sys = |f: &str| std::fs::read_to_string(format!("/sys/class/net/{}/{f}", l.name)).unwrap_or_default();
        let flags = u32::from_str_radix(sys("flags").trim().trim_start_matches("0x"), 16).unwrap_or(0);
        let addrs = rtnl.addresses_detail(l.ifindex).unwrap_or_default();
        let v4 = addrs.iter().find(|a| a.0.is_ipv4()).map(|a| a.0.to_string());
        let v6 = addrs.iter().find(|a| matches!(a.0, std::net::IpAddr::V6(x) if (x.segments()[0] & 0xffc0) == 0xfe80));
        let _ = writeln!(o, " Name = {}", l.name);
        let _ = writeln!(o, "   index = {}", l.ifindex);
        let _ = writeln!(o, "   IPv4 address = {}", v4.as_deref().unwrap_or("(none)"));
        let _ = writeln!(o, "   IPv6 address = {}", v6.map_or("(none)".into(), |a| a.0.to_string()));
        let loopback = flags & libc::IFF_LOOPBACK as u32 != 0;
        if !loopback {
            let _ = writeln!(o, "   MAC = {}", sys("address").trim());
            let _ = writeln!(o, "   MAC broadcast = {}", sys("broadcast").trim());
        }
        let has = |f: i32| flags & f as u32 != 0;
        let _ = writeln!(
            o,
            "   State = {}UP, {}RUNNING{}{}{}{}{}",
            if has(libc::IFF_UP) { "" } else { "not " },
            // sysfs leaves RUNNING out of `flags`; netlink has it.
            if l.up { "" } else { "not " },
            if has(libc::IFF_BROADCAST) { "" } else { ", no broadcast" },
            if loopback { ", loopback" } else { "" },
            if has(libc::IFF_POINTOPOINT) { ", point to point" } else { "" },
            if has(libc::IFF_NOARP) { ", no arp" } else { "" },
            if has(libc::IFF_MULTICAST) { "" } else { ", no multicast" },
        );
        let _ = writeln!(o, "   Seen up = {}", u8::from(has(libc::IFF_UP)));
        o.push_str(
            "   Delayed state change running = false\n   Up debounce timer = 0us\n   Down debounce timer = 0us\n",
        );
        let _ = writeln!(o, "   MTU = {}", sys("mtu").trim());
        let kind = match sys("type").trim() {
            "772" => "LOOPBACK",
            "1" => "ETHERNET",
            _ => "UNKNOWN",
        };
        let _ = writeln!(o, "   HW Type = {kind}");
        o.push_str("   NIC netlink status update\n   Reset ARP config counter 0\n   Original arp_ignore 0\n");
        o.push_str(
            "   Original arp_filter 0\n   Original promote_secondaries 0\n   Reset promote_secondaries counter 0\n",
        );
        let id = link_id(&l.name);
        let tracking: Vec<(String, i32)> = setup
            .instances
            .iter()
            .flat_map(|r| r.tracks.iter().filter(|t| t.id == id).map(move |t| (r.core.name.clone(), t.weight)))
            .collect();
        if !tracking.is_empty() {
            o.push_str("   Tracking VRRP instances :\n");
            for (name, weight) in tracking {
                let _ = writeln!(o, "     {name}, weight {weight}");
            }
        }
    }
}

/// keepalived.json (vrrp_json.c): one object per instance, json-c's
/// escaping of '/'.
pub fn vrrp_json(setup: &Setup, status: &[Status]) -> String {
    let state_no = |s: &str| match s {
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => 0,
    };
    let mut items = Vec::new();
    for (r, st) in setup.instances.iter().zip(status) {
        let c = &r.core;
        let g = &c.garp;
        let vips: Vec<String> = r
            .addresses
            .iter()
            .filter(|v| c.vips.contains(&v.addr))
            .map(|v| format!("{}{}", vip_text(v, r), if st.vips_set { " set" } else { "" }))
            .collect();
        let evips: Vec<String> = r
            .addresses
            .iter()
            .filter(|v| !c.vips.contains(&v.addr))
            .map(|v| format!("{}{}", vip_text(v, r), if st.vips_set { " set" } else { "" }))
            .collect();
        let track_ifp: Vec<&str> =
            r.tracks.iter().filter_map(|t| t.id.strip_prefix("if:")).filter(|n| *n != r.interface).collect();
        let track_script: Vec<String> = r
            .tracks
            .iter()
            .filter_map(|t| t.id.strip_prefix("script:"))
            .filter_map(|n| setup.scripts.iter().find(|sc| sc.name == n))
            .map(|sc| cmd_str(&resolved(&sc.script)))
            .collect();
        let data = serde_json::json!({
            "iname": c.name,
            "dont_track_primary": u8::from(r.dont_track_primary),
            "skip_check_adv_addr": u8::from(c.skip_check_adv_addr),
            "strict_mode": 0,
            "vmac_ifname": "",
            "ifp_ifname": r.interface,
            // keepalived records it from adverts heard; a master that has
            // heard none shows 0.
            "master_priority": if st.state == "MASTER" { 0 } else { st.master_priority },
            "last_transition": (st.last_transition * 1e6).round() / 1e6,
            "garp_delay": g.delay.as_secs(),
            "garp_refresh": g.refresh.as_secs(),
            "garp_rep": g.repeat,
            "garp_refresh_rep": g.refresh_repeat,
            "garp_lower_prio_delay": g.lower_prio_delay.unwrap_or(g.delay).as_secs(),
            "garp_lower_prio_rep": g.lower_prio_repeat.unwrap_or(g.repeat),
            "lower_prio_no_advert": u8::from(c.lower_prio_no_advert),
            "higher_prio_send_advert": u8::from(c.higher_prio_send_advert),
            "vrid": c.vrid,
            "base_priority": c.priority,
            "effective_priority": st.effective_priority,
            "vipset": st.vips_set,
            "promote_secondaries": false,
            "adver_int": c.advert_int.as_secs_f64().round() as u64,
            "master_adver_int": c.advert_int.as_secs_f64().round() as u64,
            "accept": u8::from(r.accept),
            "nopreempt": c.nopreempt,
            "preempt_delay": c.preempt_delay.as_secs(),
            "state": state_no(st.state),
            "wantstate": state_no(st.wantstate),
            "version": c.version,
            "smtp_alert": false,
            "notify_deleted": false,
            "vips": vips,
            "evips": evips,
            "track_ifp": track_ifp,
            "track_script": track_script,
            "auth_type": u8::from(c.auth_pass.is_some()),
            "auth_data": password(r).unwrap_or_default(),
        });
        let mut data = data;
        // keepalived leaves the lists out when they are empty.
        if let Some(m) = data.as_object_mut() {
            m.retain(|k, v| k == "vips" || !v.as_array().is_some_and(|a| a.is_empty()));
        }
        let s = &st.stats;
        let stats = serde_json::json!({
            "advert_rcvd": s.advert_rcvd,
            "advert_sent": s.advert_sent,
            "become_master": s.become_master,
            "release_master": s.release_master,
            "packet_len_err": s.packet_len_err,
            "advert_interval_err": s.interval_mismatch,
            "ip_ttl_err": s.ip_ttl_err,
            "invalid_type_rcvd": s.invalid_type_rcvd,
            "addr_list_err": s.addr_list_err,
            "invalid_authtype": s.invalid_authtype,
            "authtype_mismatch": s.authtype_mismatch,
            "auth_failure": s.auth_failure,
            "pri_zero_rcvd": s.pri_zero_rcvd,
            "pri_zero_sent": s.pri_zero_sent,
        });
        items.push(format!("{{\"data\":{},\"stats\":{}}}", data, stats));
    }
    format!("[{}]", items.join(",")).replace('/', "\\/")
}
