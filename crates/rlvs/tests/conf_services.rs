//! keepalived.conf's virtual servers driving the data plane: a NAT service
//! (lb_kind NAT, port mapping), a FULLNAT one (rlvs's `lb_kind FNAT` with a
//! `local_address_group`, DPVS's spelling), a virtual_server_group, and a
//! SIGHUP that changes weights while connections stay up.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::Duration;

const CONF: &str = "
local_address_group lip {
    192.168.100.254
}
virtual_server_group web {
    10.0.0.101 80
    10.0.0.102 80
}
virtual_server 10.0.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.100.2 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 192.168.100.3 8080 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
virtual_server 10.0.0.100 81 {
    delay_loop 1
    lb_algo rr
    lb_kind FNAT
    laddr_group_name lip
    protocol TCP
    real_server 192.168.100.2 8080 {
        weight 1
    }
    real_server 192.168.100.3 8080 {
        weight 1
    }
}
virtual_server group web {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 192.168.100.2 8080 {
        weight 1
    }
}
virtual_server 10.0.0.100 7000 {
    delay_loop 1
    lb_algo wlc
    lb_kind NAT
    protocol TCP
    real_server 192.168.100.2 7000 {
        weight 1
    }
    real_server 192.168.100.3 7000 {
        weight 1
    }
}
";

fn curls(lab: &Lab, ns: &str, url: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let o = lab.run(ns, &["curl", "-s", "--max-time", "3", url]).unwrap();
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        })
        .collect()
}

#[test]
fn virtual_servers_from_keepalived_conf_carry_traffic_and_reload_keeps_connections() {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:0a:01", "10.1.1.10/24").unwrap();
    let director = lab.host("c2", "eth0", "02:00:00:00:0a:02", "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "priv", "02:00:00:00:0a:12", "192.168.100.254/24").unwrap();
    for (i, name) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(&format!("c{}", i + 1)).unwrap();
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:0a:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        // NAT replies go back through the director; FULLNAT ones need no route.
        lab.ok(&ns, &["ip", "route", "add", "10.1.1.0/24", "via", "192.168.100.254"]).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{name}"), name, &[], 8080).unwrap();
        web::tcp_greeter(&mut lab, &ns, &format!("greet-{name}"), name, 7000).unwrap();
    }
    lab.ok(&director, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]).unwrap();
    for vip in ["10.0.0.100", "10.0.0.101", "10.0.0.102"] {
        lab.ok(&director, &["ip", "addr", "add", &format!("{vip}/32"), "dev", "lo"]).unwrap();
        lab.ok(&client, &["ip", "route", "add", vip, "dev", "eth0"]).unwrap();
    }
    let conf = lab.dir().join("k.conf").to_string_lossy().into_owned();
    std::fs::write(&conf, CONF).unwrap();
    start_daemon(&mut lab, &director.clone(), "daemon", &["-f", &conf]);
    let ready = Lab::wait_for(Duration::from_secs(15), || {
        let (l, _, _) = adm(&lab, &director, "-Ln");
        (l.matches("-> 192.168.100.").count() >= 8).then_some(l)
    });
    let listing = ready.unwrap_or_else(|| panic!("{}\n{}", adm(&lab, &director, "-Ln").0, lab.log("daemon")));
    assert!(listing.contains("TCP  10.0.0.100:81 rr"), "{listing}");
    assert!(listing.contains("TCP  10.0.0.101:80 rr") && listing.contains("TCP  10.0.0.102:80 rr"), "{listing}");
    // NAT: strict alternation, port mapped to 8080.
    let got = curls(&lab, &client, "http://10.0.0.100/", 8);
    for w in got.windows(2) {
        assert!(w[0].starts_with("rs") && w[0] != w[1], "{got:?}\n{}", lab.log("daemon"));
    }
    // FULLNAT through the local address group.
    let got = curls(&lab, &client, "http://10.0.0.100:81/", 4);
    for w in got.windows(2) {
        assert!(w[0].starts_with("rs") && w[0] != w[1], "{got:?}");
    }
    let (laddrs, err, code) = adm(&lab, &director, "--get-laddr -n -t 10.0.0.100:81");
    assert!(laddrs.contains("192.168.100.254"), "{laddrs}{err}{code}");
    // The group: both of its addresses serve.
    assert_eq!(curls(&lab, &client, "http://10.0.0.101/", 1), ["rs1"]);
    assert_eq!(curls(&lab, &client, "http://10.0.0.102/", 1), ["rs1"]);

    // Long-lived connections, then a reload that changes weights: they stay.
    let c1 = client.clone();
    let holder = std::thread::spawn({
        let script = "import socket,time\nheld=[]\nfor i in range(4):\n  c=socket.create_connection(('10.0.0.100',7000),timeout=5)\n  print(c.makefile().readline().strip(),flush=True)\n  held.append(c)\ntime.sleep(6)\nok=0\nfor c in held:\n  c.sendall(b'x')\n  ok+=1\nprint('alive',ok,flush=True)\n".to_string();
        move || {
            std::process::Command::new("ip").args(["netns", "exec", &c1, "python3", "-c", &script]).output().unwrap()
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    std::fs::write(
        &conf,
        CONF.replace(
            "real_server 192.168.100.2 7000 {\n        weight 1",
            "real_server 192.168.100.2 7000 {\n        weight 5",
        ),
    )
    .unwrap();
    let pid = lab.spawn_pid("daemon").unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGHUP) };
    let edited = Lab::wait_for(Duration::from_secs(10), || {
        let (l, _, _) = adm(&lab, &director, "-Ln");
        l.lines().any(|x| x.contains("-> 192.168.100.2:7000") && x.contains("Masq    5 ")).then_some(l)
    });
    assert!(edited.is_some(), "{}\n{}", adm(&lab, &director, "-Ln").0, lab.log("daemon"));
    let (conns, _, _) = adm(&lab, &director, "-Lnc");
    assert_eq!(
        conns.lines().filter(|l| l.contains("ESTABLISHED") && l.contains("10.0.0.100:7000")).count(),
        4,
        "the held connections are still in the table:\n{conns}"
    );
    let out = holder.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("alive 4"), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(lab.log("daemon").contains(
        "Changing weight from 1 to 5 for active service [192.168.100.2]:tcp:7000 of VS [10.0.0.100]:tcp:7000"
    ));
    // NAT still alternates after the reload.
    let got = curls(&lab, &client, "http://10.0.0.100/", 4);
    for w in got.windows(2) {
        assert!(w[0].starts_with("rs") && w[0] != w[1], "{got:?}");
    }
}

/// Every scheduler name keepalived accepts in `lb_algo`, every `lb_kind`,
/// and persistence with a granularity, as `ipvsadm -Ln` shows them.
#[test]
fn every_lb_algo_and_lb_kind_from_keepalived_conf_reaches_the_table() {
    const ALGOS: [&str; 14] =
        ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"];
    const KINDS: [(&str, &str); 4] = [("NAT", "Masq"), ("DR", "Route"), ("TUN", "Tunnel"), ("FNAT", "FullNat")];
    let mut conf = String::from("local_address_group lip {\n    10.2.0.254\n}\n");
    for (i, algo) in ALGOS.iter().enumerate() {
        let (kind, _) = KINDS[i % 4];
        let laddr = if kind == "FNAT" { "    laddr_group_name lip\n" } else { "" };
        let persist =
            if i == 0 { "    persistence_timeout 300\n    persistence_granularity 255.255.255.0\n" } else { "" };
        conf.push_str(&format!(
            "virtual_server 10.0.0.{} 80 {{\n    lb_algo {algo}\n    lb_kind {kind}\n    protocol TCP\n{laddr}{persist}    real_server 10.2.0.1 80 {{\n        weight 3\n    }}\n}}\n",
            i + 1
        ));
    }
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:0d:01", "10.2.0.254/24").unwrap();
    let path = lab.dir().join("algos.conf").to_string_lossy().into_owned();
    std::fs::write(&path, &conf).unwrap();
    start_daemon(&mut lab, &dir.clone(), "daemon", &["--engine", "none", "-f", &path]);
    let listing = Lab::wait_for(Duration::from_secs(15), || {
        let (l, _, _) = adm(&lab, &dir, "-Ln");
        (l.matches("-> 10.2.0.1:80").count() == ALGOS.len()).then_some(l)
    })
    .unwrap_or_else(|| panic!("{}\n{}", adm(&lab, &dir, "-Ln").0, lab.log("daemon")));
    assert!(listing.contains("TCP  10.0.0.1:80 rr persistent 300 mask 255.255.255.0\n"), "{listing}");
    for (i, algo) in ALGOS.iter().enumerate().skip(1) {
        assert!(listing.contains(&format!("TCP  10.0.0.{}:80 {algo}\n", i + 1)), "{algo}:\n{listing}");
    }
    for (_, shown) in KINDS {
        let rows =
            listing.lines().filter(|l| l.contains("-> 10.2.0.1:80") && l.contains(&format!(" {shown} "))).count();
        assert!(rows >= 3, "{shown}:\n{listing}");
    }
    assert!(!lab.log("daemon").contains("refused"), "{}", lab.log("daemon"));
}
