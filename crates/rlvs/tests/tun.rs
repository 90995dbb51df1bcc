//! TUN end to end: the director wraps client packets for the real servers,
//! one with plain IPIP, one with GUE (UDP port 6080, with checksum); the real
//! servers unwrap them (userspace decapsulator: this kernel has no ipip) and
//! answer the client directly from the VIP.

mod common;

use common::*;
use rlvs_netlab::seed::{self, VIP, WEB1, WEB2};
use rlvs_netlab::{web, Lab};

#[test]
fn tun_ipip_and_gue_rr_10mb_each_way_and_udp() {
    const BIG: usize = 10 * 1024 * 1024;
    let big = payload(BIG);
    let mut lab = Lab::new().unwrap();
    let t = seed::build(&mut lab, Some(&big)).unwrap();
    let rlvs = rlvs();
    lab.ok(&t.web1, &[&rlvs, "realserver", "start", "--mode", "tun", "--vip", VIP]).unwrap();
    lab.ok(&t.web2, &[&rlvs, "realserver", "start", "--mode", "tun", "--vip", VIP, "--gue-port", "6080"]).unwrap();
    for (ns, tag) in [(&t.web1.clone(), "rs1"), (&t.web2.clone(), "rs2")] {
        web::udp_echo_on(&mut lab, ns, &format!("udp-{tag}"), tag, VIP, 5353).unwrap();
    }
    lab.ok(&t.director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    start_daemon(&mut lab, &t.director.clone(), "daemon", &[]);
    for svc in [format!("-t {VIP}:80"), format!("-u {VIP}:5353")] {
        adm_ok(
            &lab,
            &t.director,
            [
                format!("-A {svc} -s rr"),
                format!("-a {svc} -r {WEB1} -i"),
                format!("-a {svc} -r {WEB2} -i --tun-type gue --tun-port 6080 --tun-csum"),
            ],
        );
    }
    let (info, _, _) = adm(&lab, &t.director, "-Ln --tun-info");
    assert!(info.contains("Tunnel  ipip") && info.contains("Tunnel  gue:6080:+c"), "{info}");
    seed::add_client_route(&lab, &t).unwrap();

    let bodies: Vec<String> = (0..8)
        .map(|_| lab.ok(&t.client, &["curl", "-sS", "--max-time", "5", VIP]).unwrap().trim().to_string())
        .collect();
    let want: Vec<&str> = ["rs2", "rs1"].iter().cycle().take(8).copied().collect();
    assert_eq!(bodies, want, "8 curls through the tunnels");

    // Down: straight from the real servers. Up: TSO frames cut, wrapped,
    // and path-MTU discovery through the director's fragmentation-needed.
    for _ in 0..2 {
        let out = lab.run(&t.client, &["curl", "-sS", "--max-time", "60", &format!("http://{VIP}/big")]).unwrap();
        assert!(out.status.success() && out.stdout == big, "10 MB download: {}", String::from_utf8_lossy(&out.stderr));
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
        assert!(answer.starts_with(&format!("{BIG} ")), "10 MB upload: {answer}");
    }

    let replies = web::udp_ask(&lab, &t.client, VIP, 5353, 4).unwrap();
    let tags: Vec<&str> = replies.iter().map(|r| r.split(':').next().unwrap()).collect();
    assert_eq!(tags, ["rs2", "rs1", "rs2", "rs1"], "{replies:?}");
    assert!(replies.iter().all(|r| r.ends_with(&format!(" from {VIP}:5353"))), "{replies:?}");

    // Established flows went through the XDP fast path.
    assert_fast_path_carried(&mut lab, "daemon", 5_000);
    // The decapsulators go with `stop`.
    for ns in [&t.web1, &t.web2] {
        lab.ok(ns, &[&rlvs, "realserver", "stop", "--mode", "tun", "--vip", VIP]).unwrap();
        assert!(lab.run(ns, &["ip", "link", "show", "rlvs-decap0"]).unwrap().status.code() != Some(0));
    }
}
