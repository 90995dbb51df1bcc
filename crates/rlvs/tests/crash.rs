//! Established connections outlive the daemon (AF_XDP: the XDP program and
//! its pinned maps forward them). Twenty 5 MB downloads, paced by the
//! servers to about 10 s each so that they stay on the wire to their last
//! byte, are spread over three real servers; the daemon is SIGKILLed in
//! the middle. Then either it is started again 3 s later and takes over
//! (same tables, same connections, new connections work), or it stays
//! down: the downloads still finish, and a new connection meets silence,
//! not a reset, until a daemon returns. For DR, NAT and FULLNAT.
//! On AF_PACKET the state lives in the process, so these tests are for
//! AF_XDP only (they pass trivially elsewhere, saying so).

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::{Duration, Instant};

const VIP: &str = "10.0.0.100";
const SIZE: usize = 5 * 1024 * 1024;
const RATE: usize = 512 * 1024;
const DOWNLOADS: usize = 20;

#[derive(Clone, Copy, PartialEq)]
enum Method {
    Dr,
    Nat,
    FullNat,
}

struct Setup {
    lab: Lab,
    client: String,
    director: String,
}

/// Client, director and three real servers. NAT and FULLNAT: the client on
/// one segment, the real servers behind the director on another. DR: all
/// on the real servers' segment, the client routing the VIP to the
/// director (DR replies go straight back, never through the director).
fn build(m: Method) -> Setup {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let director = lab.host("dir", "eth0", "02:00:00:00:13:02", "10.1.1.254/24").unwrap();
    lab.plug(&director, "eth1", "priv", "02:00:00:00:13:12", "192.168.100.254/24").unwrap();
    let client = match m {
        Method::Dr => {
            let c = lab.bare_host("cl").unwrap();
            lab.plug(&c, "eth0", "priv", "02:00:00:00:13:01", "192.168.100.10/24").unwrap();
            lab.ok(&c, &["ip", "route", "add", VIP, "via", "192.168.100.254"]).unwrap();
            c
        }
        _ => {
            let c = lab.host("cl", "eth0", "02:00:00:00:13:01", "10.1.1.10/24").unwrap();
            lab.ok(&c, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
            c
        }
    };
    let rlvs = rlvs();
    for i in 1..=3u8 {
        let rs = lab.bare_host(&format!("rs{i}")).unwrap();
        lab.plug(&rs, "eth0", "priv", &format!("02:00:00:00:13:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        match m {
            Method::Dr => lab.ok(&rs, &[&rlvs, "realserver", "start", "--vip", VIP]).map(|_| ()).unwrap(),
            Method::Nat => {
                lab.ok(&rs, &["ip", "route", "add", "default", "via", "192.168.100.254"]).map(|_| ()).unwrap()
            }
            Method::FullNat => {}
        }
        web::paced(&mut lab, &rs, &format!("web{i}"), SIZE, RATE, 80).unwrap();
    }
    lab.ok(&director, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    lab.ok(&director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    start_daemon(&mut lab, &director, "daemon", &[]);
    let (flag, extra) = match m {
        Method::Dr => ("-g", None),
        Method::Nat => ("-m", None),
        Method::FullNat => ("--fullnat", Some(format!("--add-laddr -t {VIP}:80 -z 192.168.100.254"))),
    };
    let mut cmds = vec![format!("-A -t {VIP}:80 -s rr")];
    cmds.extend(extra);
    cmds.extend((1..=3).map(|i| format!("-a -t {VIP}:80 -r 192.168.100.{i}:80 {flag}")));
    adm_ok(&lab, &director, cmds);
    // One small request through the VIP, so next hops are known.
    let ok = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&client, &["curl", "-s", "--max-time", "2", &format!("http://{VIP}/")])
            .ok()
            .filter(|o| o.status.success())
    });
    assert!(ok.is_some(), "the VIP does not answer:\n{}", lab.log("daemon"));
    Setup { lab, client, director }
}

/// Starts the downloads in the background: a shell in the client's
/// namespace runs them in parallel, each recording curl's exit code.
fn start_downloads(s: &mut Setup) {
    let d = s.lab.dir().to_string_lossy().into_owned();
    let script = format!(
        "for i in $(seq 1 {DOWNLOADS}); do (curl -sS --max-time 90 -o {d}/dl$i http://{VIP}/big 2>{d}/err$i; \
         echo $? > {d}/rc$i) & done; wait; echo done"
    );
    s.lab.spawn(&s.client, "downloads", &["sh", "-c", &script]).unwrap();
}

/// Starts the downloads and waits until every one is ESTABLISHED in
/// daemon `name`'s table.
fn downloads_established(s: &mut Setup, name: &str) {
    start_downloads(s);
    let dir = s.director.clone();
    let all = Lab::wait_for(Duration::from_secs(20), || (established(&s.lab, &dir) == DOWNLOADS).then_some(()));
    let err1 = std::fs::read_to_string(s.lab.dir().join("err1")).unwrap_or_default();
    assert!(
        all.is_some(),
        "{} of {DOWNLOADS} established ({err1})\n{}\n{}",
        established(&s.lab, &dir),
        adm(&s.lab, &dir, "-Lnc").0,
        s.lab.log(name)
    );
}

/// Whether the daemon runs AF_XDP; the state of AF_PACKET's lives in the
/// process, so these tests have nothing to show there.
fn on_afxdp(s: &Setup) -> bool {
    let yes = engine_of(&s.lab, "daemon") == "afxdp";
    if !yes {
        eprintln!("skipped: the daemon runs AF_PACKET, whose state lives in the process");
    }
    yes
}

/// ESTABLISHED connections to the VIP, as `ipvsadm -Lnc` lists them.
fn established(lab: &Lab, ns: &str) -> usize {
    adm(lab, ns, "-Lnc").0.lines().filter(|l| l.contains("ESTABLISHED") && l.contains(&format!("{VIP}:80"))).count()
}

/// Waits for the downloads and checks every one: exit 0, byte-exact.
fn check_downloads(s: &Setup) {
    let done = Lab::wait_for(Duration::from_secs(120), || s.lab.log("downloads").contains("done").then_some(()));
    assert!(done.is_some(), "downloads did not finish");
    let want = web::paced_body(SIZE);
    let dir = s.lab.dir();
    let mut bad = Vec::new();
    for i in 1..=DOWNLOADS {
        let rc = std::fs::read_to_string(dir.join(format!("rc{i}"))).unwrap_or_default();
        let got = std::fs::read(dir.join(format!("dl{i}"))).unwrap_or_default();
        if rc.trim() != "0" || got != want {
            let err = std::fs::read_to_string(dir.join(format!("err{i}"))).unwrap_or_default();
            bad.push(format!("download {i}: exit {}, {} bytes, {}", rc.trim(), got.len(), err.trim()));
        }
    }
    assert!(bad.is_empty(), "{} of {DOWNLOADS} downloads failed:\n{}", bad.len(), bad.join("\n"));
}

fn crash_and_restart(m: Method) {
    let mut s = build(m);
    if !on_afxdp(&s) {
        return;
    }
    downloads_established(&mut s, "daemon");
    let dir = s.director.clone();
    std::thread::sleep(Duration::from_secs(2));
    let saved = adm(&s.lab, &dir, "-Sn").0;
    let before = established(&s.lab, &dir);
    let resets_before = resets(&s.lab, &s.client);
    s.lab.stop("daemon", libc::SIGKILL).unwrap();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    start_daemon(&mut s.lab, &dir, "daemon2", &[]);
    let after_saved = adm(&s.lab, &dir, "-Sn").0;
    let after = established(&s.lab, &dir);
    assert_eq!(after_saved, saved, "ipvsadm -Sn before and after the restart");
    assert_eq!(after, before, "connections before and after:\n{}", adm(&s.lab, &dir, "-Lnc").0);
    assert!(plain_log(&s.lab, "daemon2").contains("took over from the earlier daemon"), "{}", s.lab.log("daemon2"));
    // The downloads were still running when it came back: the test proves
    // something only if they outlived the crash on the wire.
    assert!(!s.lab.log("downloads").contains("done"), "downloads ended before the restart ({:?})", killed.elapsed());
    // New connections work.
    let out = s.lab.run(&s.client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    check_downloads(&s);
    assert_eq!(resets(&s.lab, &s.client), resets_before, "the client was reset");
    // An orderly stop removes the program and its pins.
    s.lab.stop("daemon2", libc::SIGTERM).unwrap();
    assert!(!s.lab.ok(&dir, &["ip", "link", "show", "dev", "eth0"]).unwrap().contains("prog/xdp"));
}

#[test]
fn dr_downloads_survive_a_crash_and_restart() {
    crash_and_restart(Method::Dr);
}

#[test]
fn nat_downloads_survive_a_crash_and_restart() {
    crash_and_restart(Method::Nat);
}

#[test]
fn fullnat_downloads_survive_a_crash_and_restart() {
    crash_and_restart(Method::FullNat);
}

/// No daemon comes back: established downloads finish in XDP alone; a new
/// connection's SYN is dropped (silence: curl times out, no reset) rather
/// than answered by the director's kernel; a daemon started later serves.
#[test]
fn nat_downloads_finish_with_no_daemon_and_new_connections_meet_silence() {
    let mut s = build(Method::Nat);
    if !on_afxdp(&s) {
        return;
    }
    downloads_established(&mut s, "daemon");
    let dir = s.director.clone();
    std::thread::sleep(Duration::from_secs(2));
    let resets_before = resets(&s.lab, &s.client);
    s.lab.stop("daemon", libc::SIGKILL).unwrap();
    let out = s.lab.run(&s.client, &["curl", "-sS", "--max-time", "3", &format!("http://{VIP}/")]).unwrap();
    assert_eq!(out.status.code(), Some(28), "silence, not a refusal: {}", String::from_utf8_lossy(&out.stderr));
    check_downloads(&s);
    assert_eq!(resets(&s.lab, &s.client), resets_before, "the client was reset");
    start_daemon(&mut s.lab, &dir, "daemon2", &[]);
    let out = s.lab.run(&s.client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")]).unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{}", String::from_utf8_lossy(&out.stderr));
    s.lab.stop("daemon2", libc::SIGTERM).unwrap();
}

/// `--keep-forwarding` (an upgrade): an orderly stop leaves the program
/// and its maps in place, the downloads go on, and the next daemon takes
/// over as after a crash.
#[test]
fn keep_forwarding_hands_over_to_the_next_daemon() {
    let mut s = build(Method::Dr);
    if !on_afxdp(&s) {
        return;
    }
    // The first daemon again, now with the option (its tables restored
    // from the state file as a restart would).
    let dir = s.director.clone();
    s.lab.stop("daemon", libc::SIGKILL).unwrap();
    start_daemon(&mut s.lab, &dir, "keeper", &["--keep-forwarding"]);
    downloads_established(&mut s, "keeper");
    let saved = adm(&s.lab, &dir, "-Sn").0;
    s.lab.stop("keeper", libc::SIGTERM).unwrap();
    assert!(s.lab.ok(&dir, &["ip", "link", "show", "dev", "eth0"]).unwrap().contains("prog/xdp"), "still attached");
    std::thread::sleep(Duration::from_secs(2));
    start_daemon(&mut s.lab, &dir, "next", &[]);
    assert_eq!(adm(&s.lab, &dir, "-Sn").0, saved);
    assert_eq!(established(&s.lab, &dir), DOWNLOADS, "{}", adm(&s.lab, &dir, "-Lnc").0);
    check_downloads(&s);
    s.lab.stop("next", libc::SIGTERM).unwrap();
}

/// `rlvs cleanup` (what package removal runs) after a daemon was killed:
/// the XDP program leaves the interface, the pins, the state file and the
/// nft table go, and a second run finds nothing to do.
#[test]
fn cleanup_removes_what_a_killed_daemon_left() {
    let mut s = build(Method::Dr);
    if !on_afxdp(&s) {
        return;
    }
    let dir = s.director.clone();
    s.lab.stop("daemon", libc::SIGKILL).unwrap();
    let link = |lab: &Lab| lab.ok(&dir, &["ip", "link", "show", "dev", "eth0"]).unwrap();
    assert!(link(&s.lab).contains("prog/xdp"), "a killed daemon leaves forwarding in place");
    // The nft guard exists only where the XDP filter could not take its place.
    let nft_table = s.lab.run(&dir, &["nft", "list", "table", "netdev", "rlvs"]).unwrap().status.success();
    let out = s.lab.ok(&dir, &[&rlvs(), "cleanup"]).unwrap();
    assert!(out.contains("pinned maps and links of this namespace"), "{out}");
    assert!(out.contains("removed /run/rlvs/"), "{out}");
    assert_eq!(out.contains("removed nftables table netdev rlvs"), nft_table, "{out}");
    let detached = Lab::wait_for(Duration::from_secs(5), || (!link(&s.lab).contains("prog/xdp")).then_some(()));
    assert!(detached.is_some(), "{}", link(&s.lab));
    assert!(!s.lab.run(&dir, &["nft", "list", "table", "netdev", "rlvs"]).unwrap().status.success());
    assert_eq!(s.lab.ok(&dir, &[&rlvs(), "cleanup"]).unwrap(), "", "nothing left the second time");
    // With a daemon up, cleanup refuses.
    start_daemon(&mut s.lab, &dir, "again", &[]);
    let refused = s.lab.run(&dir, &[&rlvs(), "cleanup"]).unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("stop it first"));
    s.lab.stop("again", libc::SIGTERM).unwrap();
}
