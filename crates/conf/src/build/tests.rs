use crate::model::*;
use crate::schema::{table, BlockKind};
use crate::{load_str, Loaded, Options, Severity};
use std::time::Duration;

fn load(text: &str) -> Loaded {
    load_str("k.conf", text, Options::default())
}

fn messages(l: &Loaded) -> Vec<String> {
    l.diags.iter().map(|d| d.to_string()).collect()
}

/// Wraps one line so that it lands in a block of `kind`.
fn wrap(kind: BlockKind, line: &str) -> Option<String> {
    let rs = |inner: &str| format!("virtual_server 10.0.0.1 80 {{\n real_server 10.0.0.2 80 {{\n{inner}\n }}\n}}\n");
    Some(match kind {
        BlockKind::Root => format!("{line}\n"),
        BlockKind::GlobalDefs => format!("global_defs {{\n{line}\n}}\n"),
        BlockKind::VrrpScript => format!("vrrp_script s {{\n script /bin/true\n{line}\n}}\n"),
        BlockKind::SyncGroup => format!("vrrp_sync_group g {{\n{line}\n}}\n"),
        BlockKind::VrrpInstance => format!("vrrp_instance v {{\n{line}\n}}\n"),
        BlockKind::Authentication => format!("vrrp_instance v {{\n authentication {{\n{line}\n }}\n}}\n"),
        BlockKind::VirtualServer => format!("virtual_server 10.0.0.1 80 {{\n{line}\n}}\n"),
        BlockKind::RealServer => rs(line),
        BlockKind::HttpGet => rs(&format!("HTTP_GET {{\n{line}\n}}")),
        BlockKind::Url => rs(&format!("HTTP_GET {{\n url {{\n{line}\n }}\n}}")),
        BlockKind::TcpCheck => rs(&format!("TCP_CHECK {{\n{line}\n}}")),
        BlockKind::MiscCheck => rs(&format!("MISC_CHECK {{\n misc_path /bin/true\n{line}\n}}")),
        BlockKind::SmtpCheck => rs(&format!("SMTP_CHECK {{\n{line}\n}}")),
        BlockKind::DnsCheck => rs(&format!("DNS_CHECK {{\n{line}\n}}")),
        BlockKind::UdpCheck => rs(&format!("UDP_CHECK {{\n{line}\n}}")),
        BlockKind::PingCheck => rs(&format!("PING_CHECK {{\n{line}\n}}")),
        BlockKind::FileCheck => rs(&format!("FILE_CHECK {{\n track_file f\n{line}\n}}")),
        BlockKind::Ssl => format!("SSL {{\n{line}\n}}\n"),
        BlockKind::BfdCheck | BlockKind::SmtpHost => return None,
    })
}

#[test]
fn every_keyword_of_every_block_is_recognised_where_keepalived_has_it() {
    for kind in BlockKind::ALL {
        let t = table(kind);
        for kw in t.all() {
            let Some(text) = wrap(kind, &format!("{kw} 1")) else { continue };
            let l = load(&text);
            let unknown = format!("Unknown keyword '{kw}'");
            assert!(!l.diags.iter().any(|d| d.message == unknown), "{kind:?} should know {kw}: {:#?}", messages(&l));
            let note = format!("'{kw}' has no effect in rlvs");
            let noted = l.diags.iter().any(|d| d.message.starts_with(&note) && d.severity == Severity::Note);
            // Acted on means a builder reads it: it must not fall through to
            // the "no effect" note.
            assert_eq!(noted, t.ignored_reason(kw).is_some(), "{kind:?} {kw}: {:#?}", messages(&l));
        }
    }
}

#[test]
fn unknown_keywords_get_a_suggestion_and_their_blocks_are_skipped_whole() {
    let l = load("vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 5\n  priorty 100\n  virtual_ipaddres {\n    priority 7\n  }\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n");
    let m = messages(&l);
    assert_eq!(m[0], "k.conf:4:3: warning: Unknown keyword 'priorty'; did you mean 'priority'?");
    assert_eq!(
        m[1],
        "k.conf:5:3: warning: Unknown keyword 'virtual_ipaddres'; did you mean 'virtual_ipaddress'?; its { ... } block is skipped whole"
    );
    assert_eq!(m.len(), 2, "{m:#?}");
    // keepalived would have read `priority 7` as the instance's.
    assert_eq!(l.config.instances[0].priority, 100);
}

#[test]
fn a_keyword_in_the_wrong_block_says_where_it_belongs() {
    let l = load("global_defs {\n  priority 100\n}\n");
    assert_eq!(
        messages(&l)[0],
        "k.conf:2:3: warning: Unknown keyword 'priority'; 'priority' has no effect here (global_defs level); it belongs in vrrp_instance"
    );
}

#[test]
fn nb_get_retry_inside_http_get_is_read_as_retry_with_keepalived_s_warning() {
    let l = load("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }\n}\n");
    let m = messages(&l);
    assert_eq!(m, ["k.conf:10:4: warning: nb_get_retry is deprecated - please use 'retry'; read as 'retry'"]);
    let ck = &l.config.virtual_servers[0].real_servers[0].checkers[0];
    assert_eq!(ck.timing.retry, 3);
    assert_eq!(ck.timing.delay_before_retry, Duration::from_secs(3), "HTTP_GET's own default");
    assert_eq!(ck.timing.delay_loop, Duration::from_secs(60));
    assert_eq!(ck.timing.warmup, Duration::from_secs(60));
    assert_eq!(ck.timing.connect_timeout, Duration::from_secs(5));
}

#[test]
fn checker_timing_inherits_checker_then_real_server_then_virtual_server() {
    let l = load(
        "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n delay_loop 7\n retry 4\n connect_timeout 2\n real_server 10.0.0.2 80 {\n  delay_before_retry 9\n  TCP_CHECK {\n   connect_timeout 1.5\n  }\n  MISC_CHECK {\n   misc_path \"/bin/check 'a b'\"\n  }\n }\n}\n",
    );
    assert!(l.diags.is_empty(), "{:#?}", messages(&l));
    let rs = &l.config.virtual_servers[0].real_servers[0];
    let tcp = rs.checkers[0].timing;
    assert_eq!(
        (tcp.delay_loop, tcp.retry, tcp.connect_timeout, tcp.delay_before_retry, tcp.warmup),
        (Duration::from_secs(7), 4, Duration::from_millis(1500), Duration::from_secs(9), Duration::from_secs(7))
    );
    let CheckKind::Misc(m) = &rs.checkers[1].kind else { panic!() };
    assert_eq!(m.path, ["/bin/check", "a b"]);
    assert_eq!(rs.checkers[1].timing.retry, 4, "retry from the virtual server beats MISC_CHECK's default 0");
}

#[test]
fn instance_defaults_follow_keepalived() {
    // state MASTER without priority is the address owner.
    let l = load("vrrp_instance A {\n interface eth0\n state MASTER\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    assert_eq!((l.config.instances[0].priority, l.config.instances[0].state), (255, Some(InitialState::Master)));
    // priority 255 without state starts as master.
    let l = load("vrrp_instance A {\n interface eth0\n priority 255\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    assert_eq!(l.config.instances[0].state, Some(InitialState::Master));
    // IPv6 VIPs make version 3; authentication is then ignored, as keepalived does.
    let l = load("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n authentication {\n  auth_type PASS\n  auth_pass secret99x\n }\n virtual_ipaddress {\n  fe80::1\n }\n}\n");
    let v = &l.config.instances[0];
    assert_eq!((v.version, v.auth.clone()), (Some(3), None));
    assert!(messages(&l).iter().any(|m| m.contains("Truncating auth_pass to 8 characters")));
    assert!(messages(&l).iter().any(|m| m.contains("(A) VRRP version 3 does not support authentication. Ignoring.")));
    // A VRRPv2 advert interval is whole seconds; v3 has centiseconds.
    let l = load("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n advert_int 1.4\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    assert_eq!(l.config.instances[0].advert_int, Duration::from_secs(1));
    let l = load("vrrp_instance A {\n interface eth0\n version 3\n virtual_router_id 1\n advert_int 0.25\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n");
    assert_eq!(l.config.instances[0].advert_int, Duration::from_millis(250));
}

#[test]
fn bad_values_carry_keepalived_s_words_and_the_column() {
    let l = load("vrrp_instance X {\n interface lo\n virtual_router_id 300\n}\n");
    let m = messages(&l);
    assert_eq!(m[0], "k.conf:1:1: error: (X) the virtual router id must be set");
    assert_eq!(m[1], "k.conf:2:2: warning: (X) cannot use a loopback interface (lo) for vrrp - ignoring");
    assert_eq!(m[2], "k.conf:3:2: warning: (X): VRID '300' not valid - must be between 1 & 255");
    assert_eq!(m[3], "k.conf:3:20: warning: number '300' outside range [1, 255]");
    assert!(l.config.instances.is_empty());
}

#[test]
fn vips_take_every_option() {
    let l = load("vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.100/24 dev bond0 label bond0:0 brd + scope link\n  10.0.0.101 peer 10.0.0.1 -nodad no_track\n  10.0.0.102 bogus\n  not-an-ip\n }\n virtual_ipaddress_excluded {\n  10.0.0.200/32\n }\n}\n");
    let v = &l.config.instances[0];
    assert_eq!(v.vips.len(), 3);
    let a = &v.vips[0];
    assert_eq!((a.prefix, a.dev.as_deref(), a.label.as_deref()), (24, Some("bond0"), Some("bond0:0")));
    assert_eq!(a.brd, Some("10.0.0.255".parse().unwrap()));
    assert_eq!(a.scope, Some(Scope::Link));
    assert!(v.vips[1].nodad && v.vips[1].no_track && v.vips[1].peer.is_some());
    assert_eq!(v.excluded_vips.len(), 1);
    let m = messages(&l);
    assert!(m.iter().any(|x| x.ends_with("Unknown configuration entry 'bogus' for ip address - ignoring")));
    assert!(m.iter().any(|x| x.contains("VRRP parsed invalid IP not-an-ip")));
}

#[test]
fn tracking_and_sync_groups_resolve_their_names() {
    let l = load(
        "vrrp_script chk {\n script \"/usr/bin/test -f /tmp/x\"\n interval 2\n weight -20 reverse\n fall 3\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n track_interface {\n  eth1 weight -10\n  eth2\n }\n track_script {\n  chk\n  nochk\n }\n notify_master \"/bin/notify master\" nobody\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 2\n virtual_ipaddress {\n  10.0.0.2\n }\n}\nvrrp_sync_group G {\n group {\n  A B C\n }\n}\n",
    );
    let s = &l.config.scripts[0];
    assert_eq!(
        (s.script.len(), s.interval, s.weight, s.weight_reverse, s.fall),
        (3, Duration::from_secs(2), -20, true, 3)
    );
    let a = &l.config.instances[0];
    assert_eq!(a.track_interfaces.iter().map(|t| t.weight).collect::<Vec<_>>(), [-10, 0]);
    assert_eq!((a.track_scripts.len(), a.track_scripts[0].weight, a.track_scripts[0].reverse), (1, -20, true));
    let n = a.notify.master.as_ref().unwrap();
    assert_eq!(
        (n.command.clone(), n.user.as_ref().unwrap().user.as_str()),
        (vec!["/bin/notify".to_string(), "master".into()], "nobody")
    );
    let g = &l.config.sync_groups[0];
    assert_eq!(g.members.iter().map(|m| m.0.as_str()).collect::<Vec<_>>(), ["A", "B"]);
    let m = messages(&l);
    assert!(m.iter().any(|x| x.contains("(A) track script nochk not found, ignoring...")));
    assert!(m.iter().any(|x| x.contains("Virtual router C specified in sync group G doesn't exist - ignoring")));
}

#[test]
fn random_text_never_panics() {
    let words = [
        "vrrp_instance",
        "virtual_server",
        "real_server",
        "HTTP_GET",
        "url",
        "{",
        "}",
        "{",
        "}",
        "priority",
        "10.0.0.1",
        "80",
        "-1",
        "999999999999",
        "\"",
        "#",
        "state",
        "virtual_ipaddress",
        "track_script",
        "vrrp_script",
        "@x",
        "$A=1",
        "$A",
        "~SEQ(i,3)",
        "include",
        "dev",
        "brd",
        "+",
        "status_code",
        "200-299",
        "vrrp_sync_group",
        "group",
        "weight",
        "reverse",
        "lb_kind",
        "TUN",
        "type",
        "gue",
        "port",
        "fwmark",
        "/",
        "global_defs",
        "lvs_timeouts",
        "tcp",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..(next() % 60) {
            text.push_str(words[(next() % words.len() as u64) as usize]);
            text.push(if next() % 4 == 0 { '\n' } else { ' ' });
        }
        let _ = load(&text);
    }
}

#[test]
fn lvs_sync_daemon_is_read_as_keepalived_reads_it() {
    let inst =
        "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  virtual_ipaddress {\n    10.0.0.1\n  }\n}\n";
    let with = |g: &str| load(&format!("global_defs {{\n  {g}\n}}\n{inst}"));
    let l = with("lvs_sync_daemon eth0 VI_1 id 9 maxlen 1200 port 9000 ttl 2 group 239.1.1.1");
    assert!(l.diags.is_empty(), "{:#?}", messages(&l));
    let d = l.config.global.lvs_sync_daemon.clone().unwrap();
    assert_eq!((d.interface.as_str(), d.instance.as_deref()), ("eth0", Some("VI_1")));
    assert_eq!((d.syncid, d.maxlen, d.port, d.ttl), (Some(9), Some(1200), Some(9000), Some(2)));
    assert_eq!(d.group, Some("239.1.1.1".parse().unwrap()));
    let l = load("global_defs {\n  lvs_sync_daemon bond0 inst VI_2\n}\n");
    assert_eq!(l.config.global.lvs_sync_daemon.unwrap().instance.as_deref(), Some("VI_2"));
    let l = load("global_defs {\n  lvs_sync_daemon eth1\n}\n");
    assert_eq!(l.config.global.lvs_sync_daemon.unwrap().instance, None, "no instance: both roles");
    // The third word of the 1.x form is a sync id; what follows is unknown,
    // and keepalived keeps the rest of the line.
    let l = with("lvs_sync_daemon eth0 VI_1 colour blue");
    assert_eq!(
        messages(&l),
        [
            "k.conf:2:3: warning: Invalid syncid (colour) - defaulting to vrid",
            "k.conf:2:3: warning: Unknown option blue specified for lvs_sync_daemon",
            "k.conf:2:29: warning: invalid number 'colour'"
        ]
    );
    assert!(l.config.global.lvs_sync_daemon.is_some());
    let l = with("lvs_sync_daemon eth0 VI_1 group 10.0.0.1");
    assert_eq!(
        messages(&l),
        ["k.conf:2:3: warning: lvs_sync_daemon group address 10.0.0.1 is not multicast - ignoring"]
    );
}

/// The keywords the builders' match arms read, taken from their source:
/// each must be one the schema lists (acted on or noted), or a builder
/// reads a keyword the schema, its suggestions and `-t` do not know.
#[test]
fn every_keyword_a_builder_reads_is_in_the_schema() {
    const SOURCES: [&str; 11] = [
        include_str!("mod.rs"),
        include_str!("global.rs"),
        include_str!("lvs/mod.rs"),
        include_str!("lvs/group.rs"),
        include_str!("lvs/checker.rs"),
        include_str!("lvs/validate.rs"),
        include_str!("vrrp/mod.rs"),
        include_str!("vrrp/complete.rs"),
        include_str!("vrrp/address.rs"),
        include_str!("vrrp/track.rs"),
        include_str!("vrrp/sync.rs"),
    ];
    // Words the arms match as arguments, not keywords; and the words of
    // track_file's block and of a unicast peer's options, which the schema
    // does not tabulate.
    const VALUES: &[&str] = &[
        "NAT",
        "DR",
        "TUN",
        "FNAT",
        "FULLNAT",
        "TCP",
        "UDP",
        "SCTP",
        "tcp",
        "tcpfin",
        "udp",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "global",
        "universe",
        "site",
        "link",
        "nowhere",
        "id",
        "inst",
        "maxlen",
        "port",
        "ttl",
        "type",
        "sh",
        "mh",
        "group",
        "1.0",
        "1.0C",
        "1.0c",
        "1.1",
        "ipip",
        "gue",
        "gre",
        "csum",
        "nocsum",
        "remcsum",
        "file",
        "init_file",
        "min_ttl",
        "max_ttl",
    ];
    let mut read = std::collections::BTreeSet::new();
    for src in SOURCES {
        for line in src.lines().map(str::trim) {
            // `"kw" =>`, `"a" | "b" =>`, `kw @ ("a" | "b") =>` and
            // `(BlockKind::X, "kw") =>`: the quoted words before `=>`.
            let Some((pattern, _)) = line.split_once("=>") else { continue };
            let pattern = pattern.split(" if ").next().unwrap_or(pattern);
            let arm = pattern.starts_with('"')
                || pattern.contains(" @ (\"")
                || (pattern.starts_with('(') && pattern.contains(", \"") && !pattern.contains("Some("));
            if !arm {
                continue;
            }
            read.extend(pattern.split('"').skip(1).step_by(2).map(str::to_string));
        }
    }
    assert!(read.len() > 150, "the scan found {} keywords: it no longer reads the arms", read.len());
    let unknown: Vec<&String> = read
        .iter()
        .filter(|w| !VALUES.contains(&w.as_str()) && !BlockKind::ALL.iter().any(|k| table(*k).knows(w)))
        .collect();
    assert!(unknown.is_empty(), "read by a builder, unknown to the schema: {unknown:?}");
}

#[test]
fn a_long_persistence_engine_name_is_cut_at_a_character() {
    // Found by fuzzing (scripts/fuzz.sh, target conf): the 15-byte cut fell
    // inside a multi-byte character and panicked.
    let l = load(
        "virtual_server 10.0.0.1 80 {\n persistence_engine averyveryvery\u{fffd}longname\n real_server 10.0.0.2 80 {\n }\n}\n",
    );
    let pe = l.config.virtual_servers.first().and_then(|v| v.persistence_engine.clone());
    assert_eq!(pe.as_deref(), Some("averyveryvery"));
    assert!(messages(&l).iter().any(|m| m.contains("persistence_name too long, truncating")));
}
