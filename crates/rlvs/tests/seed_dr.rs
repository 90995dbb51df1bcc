//! The seed's section 2 for real: namespaces, a real HTTP server on each
//! real server, real curl on the client, rlvs as the director, driven
//! through its ipvsadm face with the seed's own commands.

mod common;

use common::*;
use rlvs_netlab::seed::{self, VIP, WEB1, WEB2};
use rlvs_netlab::Lab;
use std::process::Command;

fn sha256(data: &[u8]) -> String {
    let mut c = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

fn offload_on(lab: &Lab, ns: &str, feature: &str) -> bool {
    let k = lab.ok(ns, &["ethtool", "-k", "eth0"]).unwrap();
    k.lines().any(|l| l.starts_with(&format!("{feature}: on")))
}

#[test]
fn seed_section_2_through_the_ipvsadm_face() {
    const BIG: usize = 10 * 1024 * 1024;
    let big = payload(BIG);
    let mut lab = Lab::new().unwrap();
    let t = seed::build(&mut lab, Some(&big)).unwrap();
    let rlvs = rlvs();

    // 2.2: rs.sh start on both real servers.
    for ns in [&t.web1, &t.web2] {
        lab.ok(ns, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
    }
    // 2.3: vs.sh start: VIP on lo:1, then the three ipvsadm commands.
    lab.ok(&t.director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo", "label", "lo:1"]).unwrap();
    start_daemon(&mut lab, &t.director.clone(), "daemon", &[]);
    adm_ok(
        &lab,
        &t.director,
        [
            format!("-A -t {VIP}:80 -s rr"),
            format!("-a -t {VIP}:80 -r {WEB1} -g -w 1"),
            format!("-a -t {VIP}:80 -r {WEB2} -g -w 1"),
        ],
    );
    let (listing, _, code) = adm(&lab, &t.director, "-Ln");
    assert_eq!(code, 0);
    assert_eq!(listing, golden_seed_listing(), "ipvsadm -Ln must be byte-identical to ipvsadm 1.31's");

    // Before the client's host route, the VIP is unreachable (the seed's ^C).
    let out = lab.run(&t.client, &["curl", "-s", "--max-time", "1", VIP]).unwrap();
    assert!(!out.status.success());

    // 2.4: route add, then curls alternate strictly, rs2 first (the kernel
    // lists the last added real server first and rr starts at the head).
    seed::add_client_route(&lab, &t).unwrap();
    let bodies: Vec<String> = (0..8)
        .map(|_| lab.ok(&t.client, &["curl", "-sS", "--max-time", "5", VIP]).unwrap().trim().to_string())
        .collect();
    let want: Vec<&str> = ["rs2", "rs1"].iter().cycle().take(8).copied().collect();
    assert_eq!(bodies, want, "8 curls through the VIP");

    // Offloads stay at veth's defaults: checksum-partial and TSO frames.
    for ns in [&t.client, &t.director] {
        assert!(offload_on(&lab, ns, "tx-checksumming"), "tx checksum offload on in {ns}");
        assert!(offload_on(&lab, ns, "tcp-segmentation-offload"), "TSO on in {ns}");
    }
    // 10 MB from the real server to the client (replies bypass the director)...
    let url = format!("http://{VIP}/big");
    let out = lab.run(&t.client, &["curl", "-sS", "--max-time", "60", &url]).unwrap();
    assert!(out.status.success(), "download: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), BIG);
    assert_eq!(sha256(&out.stdout), sha256(&big), "10 MB download through the VIP");
    // ...and 10 MB from the client through the director to a real server.
    let file = lab.dir().join("upload.bin");
    std::fs::write(&file, &big).unwrap();
    let up = format!("@{}", file.display());
    let answer = lab
        .ok(
            &t.client,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "--data-binary",
                &up,
                "-H",
                "Expect:",
                &format!("http://{VIP}/upload"),
            ],
        )
        .unwrap();
    assert_eq!(answer.trim(), format!("{BIG} {}", sha256(&big)), "10 MB upload through the VIP");

    // The counters moved as IPVS moves them: connections through the
    // director end in FIN_WAIT (inactive), none stays active.
    let (listing, _, _) = adm(&lab, &t.director, "-Ln");
    let inact: u32 = listing
        .lines()
        .filter(|l| l.contains("Route"))
        .map(|l| l.split_whitespace().nth(5).unwrap().parse::<u32>().unwrap())
        .sum();
    assert_eq!(inact, 10, "8 curls + 2 transfers, all finished:\n{listing}");
    let (conns, _, _) = adm(&lab, &t.director, "-Lnc");
    assert_eq!(conns.lines().filter(|l| l.contains("FIN_WAIT")).count(), 10, "{conns}");

    // Stopping the daemon removes its traffic filter: the nftables guard
    // (AF_PACKET) or the XDP program (AF_XDP).
    let filter_present = |lab: &Lab| match engine_of(lab, "daemon").as_str() {
        "afxdp" => lab.ok(&t.director, &["ip", "link", "show", "dev", "eth0"]).unwrap().contains("prog/xdp"),
        _ => lab.ok(&t.director, &["nft", "list", "tables"]).unwrap().contains("netdev rlvs"),
    };
    assert!(filter_present(&lab), "{}", lab.log("daemon"));
    let engine = engine_of(&lab, "daemon");
    let fast = stop_and_fast_path_count(&mut lab, "daemon");
    assert!(!filter_present(&lab));
    // The client's ACKs of the download and the upload's data went
    // through the XDP fast path.
    if engine == "afxdp" {
        assert!(fast.unwrap() > 5_000, "{fast:?}");
    }
}

#[test]
fn directors_in_two_namespaces_do_not_see_each_other() {
    let mut lab = Lab::new().unwrap();
    let x = lab.host("x", "eth0", "02:00:00:00:01:01", "10.9.0.1/24").unwrap();
    let y = lab.host("y", "eth0", "02:00:00:00:01:02", "10.9.0.2/24").unwrap();
    start_daemon(&mut lab, &x, "dx", &[]);
    start_daemon(&mut lab, &y, "dy", &["--engine", "none"]);
    assert_eq!(adm(&lab, &x, "-A -t 10.0.0.100:80 -s rr").2, 0);
    assert_eq!(adm(&lab, &y, "-A -u 10.0.0.53:53").2, 0);
    let (lx, _, _) = adm(&lab, &x, "-Ln");
    let (ly, _, _) = adm(&lab, &y, "-Ln");
    assert!(lx.contains("TCP  10.0.0.100:80 rr") && !lx.contains("UDP"), "{lx}");
    assert!(ly.contains("UDP  10.0.0.53:53 wlc") && !ly.contains("TCP"), "{ly}");

    // A second daemon in the same namespace refuses to start.
    let rlvs = rlvs();
    let out = lab.run(&x, &[&rlvs, "daemon", "--engine", "none"]).unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running in this network namespace"));
}

#[test]
fn ipvsadm_without_a_daemon_says_how_to_start_one() {
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("lone").unwrap();
    let (out, err, code) = adm(&lab, &ns, "-Ln");
    assert_eq!(out, "");
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(err.contains("no rlvs daemon is running") && err.contains("rlvs daemon"), "{err}");
    // Help and version need no daemon.
    assert_eq!(adm(&lab, &ns, "-v").2, 0);
}

#[test]
fn only_root_may_talk_to_the_daemon() {
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("perm").unwrap();
    start_daemon(&mut lab, &ns, "d", &["--engine", "none"]);
    let path = ipvsadm(&lab);
    // Let an unprivileged user reach the binary through the lab directory.
    Command::new("chmod").args(["o+rx", &lab.dir().to_string_lossy()]).status().unwrap();
    let out = lab
        .run(&ns, &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", &path, "-A", "-t", "10.0.0.1:80"])
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "Permission denied (you must be root)\n");
    assert_eq!(adm(&lab, &ns, "-Ln").0.lines().count(), 3, "nothing was added");
}

#[test]
fn realserver_start_and_stop_undo_exactly() {
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("rs").unwrap();
    let rlvs = rlvs();
    let sysctls = |lab: &Lab| -> Vec<String> {
        ["all/arp_ignore", "lo/arp_ignore", "all/arp_announce", "lo/arp_announce"]
            .iter()
            .map(|k| lab.ok(&ns, &["cat", &format!("/proc/sys/net/ipv4/conf/{k}")]).unwrap().trim().to_string())
            .collect()
    };
    // A namespace whose settings are not the defaults, to see them restored.
    lab.ok(&ns, &["sysctl", "-qw", "net.ipv4.conf.all.arp_announce=1"]).unwrap();
    let before_addrs = lab.ok(&ns, &["ip", "-4", "addr", "show", "dev", "lo"]).unwrap();
    let before = sysctls(&lab);
    lab.ok(&ns, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
    assert_eq!(sysctls(&lab), ["1", "1", "2", "2"]);
    let addrs = lab.ok(&ns, &["ip", "-4", "addr", "show", "dev", "lo"]).unwrap();
    assert!(addrs.contains(&format!("inet {VIP}/32 scope global lo:1")), "{addrs}");
    lab.ok(&ns, &[&rlvs, "realserver", "stop", "--vip", VIP]).unwrap();
    assert_eq!(sysctls(&lab), before);
    assert_eq!(lab.ok(&ns, &["ip", "-4", "addr", "show", "dev", "lo"]).unwrap(), before_addrs);
}

/// Real servers may sit behind any interface of the director: the egress
/// interface and next hop come from the routing table. Here the client is on
/// eth0 and the only real server behind eth1; UDP datagrams to the VIP must
/// reach it.
#[test]
fn real_server_behind_a_second_interface() {
    let mut lab = Lab::new().unwrap();
    let client = lab.bare_host("cl").unwrap();
    let dir = lab.bare_host("dir").unwrap();
    let rs = lab.bare_host("rs").unwrap();
    lab.link(
        (&client, "eth0", "02:00:00:00:02:01", "10.1.1.10/24"),
        (&dir, "eth0", "02:00:00:00:02:02", "10.1.1.243/24"),
    )
    .unwrap();
    lab.link((&dir, "eth1", "02:00:00:00:02:03", "10.4.0.254/24"), (&rs, "eth0", "02:00:00:00:02:04", "10.4.0.1/24"))
        .unwrap();
    let rlvs = rlvs();
    lab.ok(&rs, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
    let got = lab.dir().join("received.txt");
    let recv = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('{VIP}',9))\n\
         f=open('{}','a')\nopen('{}.ready','w').close()\nwhile True:\n  d,a=s.recvfrom(100)\n  f.write(d.decode()+' '+a[0]+'\\n');f.flush()\n",
        got.display(),
        got.display()
    );
    lab.spawn(&rs, "udp-sink", &["python3", "-c", &recv]).unwrap();
    // On a loaded machine python may take a while to bind; a datagram
    // before that would be refused by the real server, not lost by rlvs.
    let ready = got.with_extension("txt.ready");
    assert!(Lab::wait_for(std::time::Duration::from_secs(20), || ready.exists().then_some(())).is_some());
    lab.ok(&dir, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    start_daemon(&mut lab, &dir, "daemon", &[]);
    assert_eq!(adm(&lab, &dir, &format!("-A -u {VIP}:9 -s rr")).2, 0);
    assert_eq!(adm(&lab, &dir, &format!("-a -u {VIP}:9 -r 10.4.0.1 -g")).2, 0);
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let send = format!(
        "import socket,time\nfor i in range(10):\n  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n  s.sendto(b'msg-%d'%i,('{VIP}',9))\n  time.sleep(0.02)\n"
    );
    lab.ok(&client, &["python3", "-c", &send]).unwrap();
    let lines = Lab::wait_for(std::time::Duration::from_secs(5), || {
        let s = std::fs::read_to_string(&got).unwrap_or_default();
        (s.lines().count() == 10).then_some(s)
    });
    let lines = lines.unwrap_or_else(|| {
        panic!("datagrams lost:\n{}\n{}", std::fs::read_to_string(&got).unwrap_or_default(), lab.log("daemon"))
    });
    for i in 0..10 {
        assert!(lines.contains(&format!("msg-{i} 10.1.1.10")), "{lines}");
    }
    let (stats, _, _) = adm(&lab, &dir, "-Ln --stats");
    assert!(stats.contains("UDP  10.0.0.100:9"), "{stats}");
    let (conns, _, _) = adm(&lab, &dir, "-Lnc");
    assert_eq!(conns.lines().filter(|l| l.starts_with("UDP") && l.contains("10.4.0.1:9")).count(), 10, "{conns}");
}

/// With no usable real server the kernel answers ICMP port unreachable
/// (ip_vs_leave), so clients fail at once with "connection refused" rather
/// than time out; rlvs does the same.
#[test]
fn no_real_server_available_refuses_at_once() {
    let mut lab = Lab::new().unwrap();
    let client = lab.bare_host("cl").unwrap();
    let dir = lab.bare_host("dir").unwrap();
    lab.link(
        (&client, "eth0", "02:00:00:00:03:01", "10.1.1.10/24"),
        (&dir, "eth0", "02:00:00:00:03:02", "10.1.1.243/24"),
    )
    .unwrap();
    lab.ok(&dir, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    start_daemon(&mut lab, &dir, "daemon", &[]);
    assert_eq!(adm(&lab, &dir, &format!("-A -t {VIP}:80 -s rr")).2, 0);
    let curl = |lab: &Lab| lab.run(&client, &["curl", "-s", "--max-time", "5", VIP]).unwrap().status.code();
    assert_eq!(curl(&lab), Some(7), "no real servers: refused");
    // A quiesced real server (weight 0) takes no new connections either.
    assert_eq!(adm(&lab, &dir, &format!("-a -t {VIP}:80 -r 10.1.1.99 -g -w 0")).2, 0);
    assert_eq!(curl(&lab), Some(7), "only a quiesced real server: refused");
}

/// Asked for the kernel's table on a kernel without IPVS (this machine's),
/// the ipvsadm face says what ipvsadm says there, and never falls back to
/// a daemon. In the lab guest, lab/kernel-adm.sh compares it with the real
/// ipvsadm on a kernel that has IPVS.
#[test]
fn the_kernel_backend_without_ip_vs_answers_as_ipvsadm_does() {
    if std::path::Path::new("/proc/net/ip_vs").exists() {
        return;
    }
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("kadm").unwrap();
    start_daemon(&mut lab, &ns, "d", &["--engine", "none"]);
    let rlvs = rlvs();
    let out = lab.run(&ns, &["env", "RLVS_BACKEND=kernel", &rlvs, "adm", "-Ln"]).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n"
    );
    assert!(out.stdout.is_empty(), "the daemon's table was not listed instead");
}
