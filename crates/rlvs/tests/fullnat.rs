//! FULLNAT end to end: the real servers sit on a subnet with no route to
//! any client (no default route at all). The director rewrites the source to
//! its local address 172.16.0.1 (the service's pool, set with rlvs's
//! --add-laddr) with a port of its own, the destination to RIP:8080; the
//! replies come back to the local address and are reversed.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "10.0.0.100";
const LIP: &str = "172.16.0.1";

#[test]
fn fullnat_rr_10mb_each_way_udp_with_unrouted_real_servers() {
    const BIG: usize = 10 * 1024 * 1024;
    let big = payload(BIG);
    let mut lab = Lab::new().unwrap();
    lab.segment("inner").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:05:01", "10.1.1.10/24").unwrap();
    let director = lab.host("c2", "eth0", "02:00:00:00:05:02", "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "inner", "02:00:00:00:05:12", &format!("{LIP}/24")).unwrap();
    let mut servers = Vec::new();
    for (i, tag) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(&format!("c{}", i + 1)).unwrap();
        lab.plug(&ns, "eth0", "inner", &format!("02:00:00:00:05:2{i}"), &format!("172.16.0.{i}/24")).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{tag}"), tag, &[("big", &big)], 8080).unwrap();
        web::udp_echo(&mut lab, &ns, &format!("udp-{tag}"), tag, 5353).unwrap();
        assert!(!lab.ok(&ns, &["ip", "route"]).unwrap().contains("default"), "no way back to clients");
        servers.push(format!("172.16.0.{i}"));
    }
    lab.ok(&director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    lab.ok(&client, &["ip", "route", "add", VIP, "dev", "eth0"]).unwrap();
    start_daemon(&mut lab, &director.clone(), "daemon", &[]);
    for (svc, port) in [(format!("-t {VIP}:80"), 8080), (format!("-u {VIP}:53"), 5353)] {
        let mut cmds = vec![format!("-A {svc} -s rr"), format!("--add-laddr {svc} -z {LIP}")];
        cmds.extend(servers.iter().map(|s| format!("-a {svc} -r {s}:{port} --fullnat")));
        adm_ok(&lab, &director, cmds);
    }
    let (listing, _, _) = adm(&lab, &director, "-Ln");
    assert!(listing.contains(&format!("  -> {:<28} FullNat 1", "172.16.0.2:8080")), "{listing}");
    let (laddrs, _, _) = adm(&lab, &director, "--get-laddr -n");
    assert!(laddrs.contains(&format!("TCP  {VIP}:80")) && laddrs.contains(LIP), "{laddrs}");
    // The director's own connections from the local address (health checks)
    // are not the engine's: their ports are the kernel's ephemeral ones.
    for s in &servers {
        let ok = Lab::wait_for(std::time::Duration::from_secs(10), || {
            lab.run(&director, &["curl", "-s", "--max-time", "1", &format!("http://{s}:8080/")])
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(ok.is_some(), "director reaches {s} directly");
    }

    let bodies: Vec<String> = (0..8)
        .map(|_| {
            lab.ok(&client, &["curl", "-sS", "--max-time", "5", &format!("http://{VIP}/")]).unwrap().trim().to_string()
        })
        .collect();
    let want: Vec<&str> = ["rs2", "rs1"].iter().cycle().take(8).copied().collect();
    assert_eq!(bodies, want, "8 curls through FULLNAT");

    let out = lab.run(&client, &["curl", "-sS", "--max-time", "60", &format!("http://{VIP}/big")]).unwrap();
    assert!(out.status.success() && out.stdout == big, "10 MB download: {}", String::from_utf8_lossy(&out.stderr));
    let file = lab.dir().join("up.bin");
    std::fs::write(&file, &big).unwrap();
    let answer = lab
        .ok(
            &client,
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

    let replies = web::udp_ask(&lab, &client, VIP, 53, 4).unwrap();
    let tags: Vec<&str> = replies.iter().map(|r| r.split(':').next().unwrap()).collect();
    assert_eq!(tags, ["rs2", "rs1", "rs2", "rs1"], "{replies:?}");
    assert!(replies.iter().all(|r| r.ends_with(&format!(" from {VIP}:53"))), "{replies:?}");

    // The real servers only ever saw the local address.
    let (conns, _, _) = adm(&lab, &director, "-Lnc");
    assert!(conns.lines().filter(|l| l.starts_with("TCP")).count() >= 10, "{conns}");
    let (saved, _, _) = adm(&lab, &director, "-S -n");
    assert!(saved.contains(&format!("--add-laddr -t {VIP}:80 -z {LIP}")), "{saved}");
    assert!(saved.contains("-r 172.16.0.2:8080 --fullnat -w 1"), "{saved}");
    // Established flows went through the XDP fast path, both ways.
    assert_fast_path_carried(&mut lab, "daemon", 10_000);
}
