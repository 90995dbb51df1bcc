//! IPv6 services end to end: DR (real servers beside the director, VIP on
//! their loopback), NAT and FULLNAT (real servers on a private segment).

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "2001:db8:100::100";

fn v6(lab: &Lab, ns: &str, cidr: &str, dev: &str) {
    lab.ok(ns, &["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"]).unwrap();
}

#[test]
fn ipv6_dr_nat_and_fullnat_alternate() {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:06:01", "10.1.1.10/24").unwrap();
    let director = lab.host("c2", "eth0", "02:00:00:00:06:02", "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "priv", "02:00:00:00:06:12", "").unwrap();
    v6(&lab, &client, "2001:db8:1::10/64", "eth0");
    v6(&lab, &director, "2001:db8:1::243/64", "eth0");
    v6(&lab, &director, "fd00:2::1/64", "eth1");
    // The director answers neighbour solicitations for the VIP only if the
    // VIP sits on the interface (IPv6 has no arp_ignore=0 equivalent).
    v6(&lab, &director, &format!("{VIP}/128"), "eth0");
    let rlvs = rlvs();
    let mut dr = Vec::new();
    for (i, tag) in [(4u8, "dr1"), (5, "dr2")] {
        let ns = lab
            .host(&format!("c{}", i - 1), "eth0", &format!("02:00:00:00:06:0{i}"), &format!("10.1.1.24{i}/24"))
            .unwrap();
        v6(&lab, &ns, &format!("2001:db8:1::24{i}/64"), "eth0");
        lab.ok(&ns, &[&rlvs, "realserver", "start", "--vip", VIP]).unwrap();
        web::start(&mut lab, &ns, &format!("web-{tag}"), tag, &[]).unwrap();
        dr.push(format!("2001:db8:1::24{i}"));
    }
    let mut private = Vec::new();
    for (i, tag) in [(2u8, "nat1"), (3, "nat2")] {
        let ns = lab.bare_host(&format!("p{i}")).unwrap();
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:06:2{i}"), "").unwrap();
        v6(&lab, &ns, &format!("fd00:2::{i}/64"), "eth0");
        lab.ok(&ns, &["ip", "-6", "route", "add", "default", "via", "fd00:2::1"]).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{tag}"), tag, &[], 8080).unwrap();
        private.push(format!("fd00:2::{i}"));
    }
    lab.ok(&client, &["ip", "-6", "route", "add", &format!("{VIP}/128"), "dev", "eth0"]).unwrap();
    start_daemon(&mut lab, &director.clone(), "daemon", &[]);
    let mut cmds = vec![format!("-A -t [{VIP}]:80 -s rr")];
    cmds.extend(dr.iter().map(|r| format!("-a -t [{VIP}]:80 -r {r} -g")));
    cmds.push(format!("-A -t [{VIP}]:81 -s rr"));
    cmds.extend(private.iter().map(|r| format!("-a -t [{VIP}]:81 -r [{r}]:8080 -m")));
    cmds.push(format!("-A -t [{VIP}]:82 -s rr"));
    cmds.push(format!("--add-laddr -t [{VIP}]:82 -z fd00:2::1"));
    cmds.extend(private.iter().map(|r| format!("-a -t [{VIP}]:82 -r [{r}]:8080 --fullnat")));
    adm_ok(&lab, &director, &cmds);
    for r in &private {
        let url = format!("http://[{r}]:8080/");
        let ok = Lab::wait_for(std::time::Duration::from_secs(10), || {
            lab.run(&director, &["curl", "-s", "--max-time", "1", "-g", &url]).ok().filter(|o| o.status.success())
        });
        assert!(ok.is_some(), "{url} not up");
    }
    for (port, want) in [(80, ["dr2", "dr1"]), (81, ["nat2", "nat1"]), (82, ["nat2", "nat1"])] {
        let url = format!("http://[{VIP}]:{port}/");
        let bodies: Vec<String> = (0..6)
            .map(|_| lab.ok(&client, &["curl", "-sS", "-g", "--max-time", "5", &url]).unwrap().trim().to_string())
            .collect();
        let expect: Vec<&str> = want.iter().cycle().take(6).copied().collect();
        assert_eq!(bodies, expect, "{url}");
    }
    let (listing, _, _) = adm(&lab, &director, "-Ln");
    assert!(listing.contains(&format!("TCP  [{VIP}]:81 rr")), "{listing}");
    // Each connection's request, ACKs and FIN went through the XDP fast path.
    assert_fast_path_carried(&mut lab, "daemon", 18);
}
