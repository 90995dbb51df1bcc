//! NAT (masquerading) end to end: the real servers sit on a private segment
//! behind the director and use it as their gateway; requests are rewritten
//! VIP:80 -> RIP:8080 (port mapping), replies back to VIP:80. The director's
//! kernel forwards IP (as a NAT director's does), so the test also proves
//! the guard keeps it from forwarding unrewritten replies.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "10.0.0.100";

struct Nat {
    lab: Lab,
    client: String,
    client2: String,
    director: String,
}

fn build(big: &[u8]) -> Nat {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:04:01", "10.1.1.10/24").unwrap();
    let client2 = lab.host("c5", "eth0", "02:00:00:00:04:05", "10.1.1.11/24").unwrap();
    lab.ok(&client2, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    let director = lab.host("c2", "eth0", "02:00:00:00:04:02", "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "priv", "02:00:00:00:04:12", "192.168.100.254/24").unwrap();
    for (i, name) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(&format!("c{}", i + 1)).unwrap();
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:04:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        lab.ok(&ns, &["ip", "route", "add", "default", "via", "192.168.100.254"]).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{name}"), name, &[("big", big)], 8080).unwrap();
        web::udp_echo(&mut lab, &ns, &format!("udp-{name}"), name, 5353).unwrap();
        web::tcp_greeter(&mut lab, &ns, &format!("greet-{name}"), name, 7000).unwrap();
    }
    start_nat_director(&mut lab, &director, &client, VIP);
    adm_ok(
        &lab,
        &director,
        [
            format!("-A -t {VIP}:80 -s rr"),
            format!("-a -t {VIP}:80 -r 192.168.100.2:8080 -m"),
            format!("-a -t {VIP}:80 -r 192.168.100.3:8080 -m"),
            format!("-A -u {VIP}:53 -s rr"),
            format!("-a -u {VIP}:53 -r 192.168.100.2:5353 -m"),
            format!("-a -u {VIP}:53 -r 192.168.100.3:5353 -m"),
            format!("-A -t {VIP}:81 -s rr -p 300"),
            format!("-a -t {VIP}:81 -r 192.168.100.2:8080 -m"),
            format!("-a -t {VIP}:81 -r 192.168.100.3:8080 -m"),
            format!("-A -t {VIP}:7000 -s wlc"),
            format!("-a -t {VIP}:7000 -r 192.168.100.2 -m -w 3"),
            format!("-a -t {VIP}:7000 -r 192.168.100.3 -m -w 1"),
        ],
    );
    // The web servers must be up before the first curl counts.
    for ip in ["192.168.100.2", "192.168.100.3"] {
        let ns = director.clone();
        let ok = Lab::wait_for(std::time::Duration::from_secs(10), || {
            lab.run(&ns, &["curl", "-s", "--max-time", "1", &format!("http://{ip}:8080/")])
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(ok.is_some(), "web server {ip} not up");
    }
    Nat { lab, client, client2, director }
}

#[test]
fn nat_rr_alternates_moves_10mb_each_way_and_answers_udp() {
    const BIG: usize = 10 * 1024 * 1024;
    let big = payload(BIG);
    let mut t = build(&big);
    let lab = &t.lab;

    let (listing, _, _) = adm(lab, &t.director, "-Ln");
    assert!(listing.contains(&format!("  -> {:<28} Masq    1      0          0", "192.168.100.2:8080")), "{listing}");

    let bodies: Vec<String> = (0..8)
        .map(|_| {
            lab.ok(&t.client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")])
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    let want: Vec<&str> = ["rs2", "rs1"].iter().cycle().take(8).copied().collect();
    assert_eq!(bodies, want, "8 curls through the NAT director");

    // 10 MB down (real server -> director -> client: the reply path) and up.
    let out = lab.run(&t.client, &["curl", "-sS", "--max-time", "60", &format!("http://{VIP}/big")]).unwrap();
    assert!(out.status.success(), "download: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), BIG);
    assert!(out.stdout == big, "10 MB download through NAT is intact");
    let file = lab.dir().join("up.bin");
    std::fs::write(&file, &big).unwrap();
    let answer = lab
        .ok(
            &t.client,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-H",
                "Expect:",
                "--data-binary",
                &format!("@{}", file.display()),
                &format!("http://{VIP}/upload"),
            ],
        )
        .unwrap();
    assert!(answer.starts_with(&format!("{BIG} ")), "upload answer: {answer}");

    // UDP request/response: answers come back from the virtual service.
    let replies = rlvs_netlab::web::udp_ask(lab, &t.client, VIP, 53, 4).unwrap();
    assert_eq!(replies.len(), 4, "{replies:?}");
    for (i, r) in replies.iter().enumerate() {
        assert!(r.ends_with(&format!(":q{i} from {VIP}:53")), "reply {i}: {r}");
    }
    let tags: Vec<&str> = replies.iter().map(|r| r.split(':').next().unwrap()).collect();
    assert_eq!(tags, ["rs2", "rs1", "rs2", "rs1"]);

    // Both directions counted, once the estimator has folded them (every
    // 2 s, as the kernel's: listings show nothing newer).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (stats, _, _) = adm(lab, &t.director, "-Ln --stats");
    let line = stats.lines().find(|l| l.starts_with("TCP  10.0.0.100:80")).unwrap();
    let f: Vec<u64> = line.split_whitespace().skip(2).map(|x| x.parse().unwrap()).collect();
    assert_eq!(f[0], 10, "connections: {line}");
    assert!(f[1] > 0 && f[2] > 0, "in and out packets: {line}");
    assert!(f[4] > BIG as u64, "out bytes include the 10 MB download: {line}");
    // Established flows went through the XDP fast path, both ways.
    assert_fast_path_carried(&mut t.lab, "daemon", 10_000);
}

fn curl_bodies(lab: &Lab, ns: &str, url: &str, n: usize) -> Vec<String> {
    (0..n).map(|_| lab.ok(ns, &["curl", "-sS", "--max-time", "5", url]).unwrap().trim().to_string()).collect()
}

#[test]
fn persistence_keeps_each_client_on_one_real_server() {
    let t = build(b"x");
    let url = format!("http://{VIP}:81/");
    let one = curl_bodies(&t.lab, &t.client, &url, 20);
    assert!(one.iter().all(|b| *b == one[0]), "client 1, 20 connections: {one:?}");
    let two = curl_bodies(&t.lab, &t.client2, &url, 20);
    assert!(two.iter().all(|b| *b == two[0]), "client 2, 20 connections: {two:?}");
    assert_ne!(one[0], two[0], "the clients are spread over the real servers");
    let (pc, _, _) = adm(&t.lab, &t.director, "-Ln --persistent-conn -t 10.0.0.100:81");
    let persist: u32 = pc
        .lines()
        .filter(|l| l.starts_with("  -> 192"))
        .map(|l| l.split_whitespace().nth(3).unwrap().parse::<u32>().unwrap())
        .sum();
    assert_eq!(persist, 2, "one template per client:\n{pc}");
    let (conns, _, _) = adm(&t.lab, &t.director, "-Lnc");
    assert_eq!(conns.lines().filter(|l| l.contains("NONE") && l.contains(":0 ")).count(), 2, "{conns}");
}

#[test]
fn wlc_splits_long_lived_connections_by_weight() {
    let t = build(b"x");
    let tags = rlvs_netlab::web::tcp_hold(&t.lab, &t.client, VIP, 7000, 40).unwrap();
    assert_eq!(tags.len(), 40);
    let heavy = tags.iter().filter(|t| *t == "rs1").count() as f64;
    let light = tags.iter().filter(|t| *t == "rs2").count() as f64;
    // 3:1 means 30:10; within 10 % of the ratio.
    let ratio = heavy / light;
    assert!((2.7..=3.3).contains(&ratio), "{heavy}:{light}");
}
