//! The seed's two keepalived.conf files, verbatim, against what real
//! keepalived 2.2.7 made of them in the lab (lab/capture-keepalived-golden.sh):
//! its configuration dump (-d) and its config-test messages (-t).

use rlvs_conf::model::*;
use rlvs_conf::{load_file, Options, Severity};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/keepalived").join(name)
}

/// `key = value` lines of keepalived's dump, in order, trimmed.
fn dump(name: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(golden(name))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
        .collect()
}

fn values<'a>(d: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    d.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn secs(s: &str) -> Duration {
    let s = s.trim_end_matches(" sec");
    if let Some(us) = s.strip_suffix(" us") {
        return Duration::from_micros(us.parse().unwrap());
    }
    Duration::from_secs_f64(s.parse().unwrap())
}

fn check_seed(which: &str, ifname: &str, priority: u8, state: InitialState) {
    let conf = golden(&format!("seed-{which}.conf"));
    let loaded = load_file(&conf, Options::default()).unwrap();
    let c = &loaded.config;
    let d = dump(&format!("seed-{which}.keepalived-dump.txt"));

    // global_defs
    assert_eq!(values(&d, "Router ID")[0], c.global.router_id.as_deref().unwrap());
    assert_eq!(values(&d, "VRRP IPv4 mcast group")[0], c.global.mcast_group4.to_string());
    assert_eq!(values(&d, "VRRP IPv6 mcast group")[0], c.global.mcast_group6.to_string());
    assert_eq!(secs(values(&d, "Gratuitous ARP delay")[0]), c.global.garp.master_delay);
    assert_eq!(values(&d, "Gratuitous ARP repeat")[0], c.global.garp.master_repeat.to_string());
    assert_eq!(values(&d, "VRRP default protocol version")[0], c.global.version.to_string());

    // vrrp_instance
    let [vi] = &c.instances[..] else { panic!("one instance") };
    assert_eq!(values(&d, "VRRP Instance"), [vi.name.as_str()]);
    assert_eq!(values(&d, "VRRP Version"), [vi.version.unwrap().to_string()]);
    let want = match vi.state.unwrap() {
        InitialState::Master => "MASTER",
        InitialState::Backup => "BACKUP",
    };
    assert_eq!(values(&d, "Wantstate"), [want]);
    assert_eq!(vi.state, Some(state));
    assert_eq!(values(&d, "Interface"), [vi.interface.as_ref().unwrap().0.as_str()]);
    assert_eq!(vi.interface.as_ref().unwrap().0, ifname);
    assert_eq!(values(&d, "Virtual Router ID"), [vi.vrid.to_string()]);
    assert_eq!(values(&d, "Priority"), [vi.priority.to_string()]);
    assert_eq!(vi.priority, priority);
    assert_eq!(secs(values(&d, "Advert interval")[0]), vi.advert_int);
    assert_eq!(values(&d, "Authentication type"), ["SIMPLE_PASSWORD"]);
    let Some(Auth::Pass(p)) = &vi.auth else { panic!("PASS authentication") };
    let pass = String::from_utf8(p.iter().copied().take_while(|b| *b != 0).collect()).unwrap();
    assert_eq!(values(&d, "Password"), [pass.as_str()]);
    let [vip] = &vi.vips[..] else { panic!("one VIP") };
    let text = std::fs::read_to_string(golden(&format!("seed-{which}.keepalived-dump.txt"))).unwrap();
    let vip_line = format!(
        "{}/{} dev {} scope global label {}",
        vip.addr,
        vip.prefix,
        vip.dev.as_deref().unwrap(),
        vip.label.as_deref().unwrap()
    );
    assert!(text.lines().any(|l| l.trim() == vip_line), "keepalived's VIP line is {vip_line}");
    assert!(!vi.nopreempt && values(&d, "Preempt") == ["enabled"]);

    // virtual_server
    let [vs] = &c.virtual_servers[..] else { panic!("one virtual server") };
    let VsTarget::Addr { addr, port } = vs.target else { panic!() };
    assert!(text.contains(&format!("VS VIP = {addr}, VPORT = {port}")));
    assert_eq!(values(&d, "lvs_sched"), [vs.lb_algo.as_str()]);
    assert_eq!(secs(values(&d, "delay_loop")[0]), vs.delay_loop);
    assert_eq!(values(&d, "protocol"), ["TCP"]);
    assert_eq!(vs.protocol, VsProtocol::Tcp);
    assert_eq!(values(&d, "default forwarding method"), ["DR"]);
    assert_eq!(vs.lb_kind, LbKind::Dr);

    // real servers and their checkers, in order
    assert_eq!(vs.real_servers.len(), 2);
    let methods = values(&d, "forwarding method");
    let rs_timeouts = values(&d, "connection timeout");
    let retries = values(&d, "Retries");
    let dbr = values(&d, "Delay before retry");
    let warmup = values(&d, "Warmup");
    let checker_delay = values(&d, "Delay loop");
    let checker_timeout = values(&d, "Timeout");
    for (i, rs) in vs.real_servers.iter().enumerate() {
        assert!(text.contains(&format!("RIP = {}, RPORT = {}, WEIGHT = {}", rs.addr, rs.port, rs.weight)));
        assert_eq!(methods[i], "DR");
        // rs_timeouts[0] is the virtual server's (5 s default).
        assert_eq!(secs(rs_timeouts[i + 1]), Duration::from_secs(3));
        let [ck] = &rs.checkers[..] else { panic!("one checker") };
        let CheckKind::Http(h) = &ck.kind else { panic!("HTTP_GET") };
        assert_eq!(h.urls[0].path, "/");
        assert_eq!(h.urls[0].status_codes, [(200, 200)]);
        // keepalived's checker: its retry stays 1 (nb_get_retry at
        // real_server level is ignored), delay_before_retry 3 s from the
        // real server, warmup = delay_loop.
        assert_eq!(retries[i], ck.timing.retry.to_string());
        assert_eq!(ck.timing.retry, 1);
        assert_eq!(secs(dbr[i]), ck.timing.delay_before_retry);
        assert_eq!(secs(warmup[i]), ck.timing.warmup);
        // "Delay loop": both real servers (seconds), then both checkers (us).
        assert_eq!(secs(checker_delay[2 + i]), ck.timing.delay_loop);
        assert_eq!(secs(checker_timeout[i]), ck.timing.connect_timeout);
    }

    // keepalived's -t messages: each of its (file: Line N) complaints is
    // one of ours at the same line.
    let t = std::fs::read_to_string(golden(&format!("seed-{which}.keepalived-t.txt"))).unwrap();
    assert_eq!(t.lines().last(), Some("exit 5"));
    for line in t.lines().filter(|l| l.starts_with('(')) {
        let (head, msg) = line.split_once(") ").unwrap();
        let n: u32 = head.rsplit(' ').next().unwrap().parse().unwrap();
        if msg == "Unknown keyword '}'" {
            // keepalived's second word on the extra brace; ours says it once.
            continue;
        }
        assert!(
            loaded.diags.iter().any(|dg| dg.pos.as_ref().unwrap().line == n && dg.message == msg),
            "keepalived said '{line}'; rlvs said {:#?}",
            loaded.diags
        );
    }

    // And ours, in full.
    let ours: String = loaded
        .diags
        .iter()
        .map(|dg| dg.to_string().replace(conf.to_str().unwrap(), &format!("seed-{which}.conf")) + "\n")
        .collect();
    let expected = std::fs::read_to_string(golden(&format!("seed-{which}.rlvs-diags.txt"))).unwrap_or_default();
    if std::env::var_os("RLVS_BLESS").is_some() {
        std::fs::write(golden(&format!("seed-{which}.rlvs-diags.txt")), &ours).unwrap();
    } else {
        assert_eq!(ours, expected, "rlvs's diagnostics changed (RLVS_BLESS=1 to accept after review)");
    }
    assert!(loaded.worst() == Some(Severity::Warning), "warnings, no errors");
}

#[test]
fn seed_c2_master_reads_as_keepalived_reads_it() {
    check_seed("c2", "bond0", 100, InitialState::Master);
}

#[test]
fn seed_c5_backup_reads_as_keepalived_reads_it() {
    check_seed("c5", "eth0", 80, InitialState::Backup);
}
