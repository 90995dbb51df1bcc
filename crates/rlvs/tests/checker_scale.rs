//! The checker side at scale: 1,000 virtual servers × 10 real servers, each
//! with a TCP_CHECK against a real listener in a namespace. Nine of the ten
//! real-server addresses listen; the tenth refuses. Every service and every
//! real server must be installed (keepalived starts real servers up), then
//! exactly the 1,000 refusing ones must leave while the 9,000 others stay.
//! Times and memory are printed for the record (BENCHMARKS.md has the
//! measured numbers from `rlvs-bench checkers`); nothing here asserts speed.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;
const REAL_SERVERS: usize = 10;

/// A refusing server leaves after its retry, `delay_before_retry` after the
/// first refusal: ten seconds, so that listing 10,000 entries (a second or
/// more in a debug build) has time to see the complete table first.
fn config() -> String {
    let mut s = String::new();
    for v in 0..SERVICES {
        let port = 10_000 + v;
        s.push_str(&format!(
            "virtual_server 10.0.{}.{} {port} {{\n delay_loop 3\n lb_algo wlc\n lb_kind DR\n protocol TCP\n",
            v / 250,
            v % 250 + 1
        ));
        for r in 0..REAL_SERVERS {
            s.push_str(&format!(
                " real_server 10.2.0.{} {port} {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout 3\n   delay_before_retry 10\n  }}\n }}\n",
                r + 1
            ));
        }
        s.push_str("}\n");
    }
    s
}

fn counts(lab: &Lab, ns: &str) -> (usize, usize, usize) {
    let (table, _, _) = adm(lab, ns, "-Ln");
    let services = table.lines().filter(|l| l.starts_with("TCP  10.0.")).count();
    let listening = table.lines().filter(|l| l.contains("-> 10.2.0.") && !l.contains("-> 10.2.0.10:")).count();
    let refusing = table.lines().filter(|l| l.contains("-> 10.2.0.10:")).count();
    (services, listening, refusing)
}

#[test]
fn ten_thousand_tcp_checks_install_and_remove_exactly_the_dead_servers() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:0b:01", "10.2.0.254/24").unwrap();
    let back = lab.host("rs", "eth0", "02:00:00:00:0b:02", "10.2.0.1/24").unwrap();
    for r in 1..REAL_SERVERS {
        lab.ok(&back, &["ip", "addr", "add", &format!("10.2.0.{}/24", r + 1), "dev", "eth0"]).unwrap();
    }
    let listening: Vec<String> = (1..REAL_SERVERS).map(|r| format!("10.2.0.{r}")).collect();
    web::tcp_listeners(&mut lab, &back, "listeners", &listening, 10_000, SERVICES).unwrap();

    let conf = lab.dir().join("scale.conf").to_string_lossy().into_owned();
    std::fs::write(&conf, config()).unwrap();
    let face = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(rlvs(), &face).unwrap();
    let checked = lab.run(&dir, &[&face.to_string_lossy(), "-t", "-f", &conf]).unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));

    let t0 = Instant::now();
    let rlvs = rlvs();
    let pid = lab.spawn(&dir, "daemon", &[&rlvs, "daemon", "--engine", "none", "--log", "info", "-f", &conf]).unwrap();
    let installed = Lab::wait_for(Duration::from_secs(120), || {
        let c = counts(&lab, &dir);
        (c.0 == SERVICES && c.1 + c.2 == SERVICES * REAL_SERVERS).then_some(())
    });
    assert!(installed.is_some(), "table never complete: {:?}\n{}", counts(&lab, &dir), lab.log("daemon"));
    let install = t0.elapsed();

    let settled = Lab::wait_for(Duration::from_secs(120), || {
        let c = counts(&lab, &dir);
        (c.2 == 0).then_some(c)
    });
    let settled = settled.unwrap_or_else(|| panic!("refusing servers still present: {:?}", counts(&lab, &dir)));
    assert_eq!(settled, (SERVICES, SERVICES * (REAL_SERVERS - 1), 0));
    let log = lab.log("daemon");
    assert_eq!(log.matches("Removing service [10.2.0.10]:tcp:").count(), SERVICES);
    assert!(!log.contains("Removing service [10.2.0.1]:tcp:"), "a listening server was removed");
    // Two more rounds of checks: the 9,000 stay, the 1,000 stay out.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(counts(&lab, &dir), (SERVICES, SERVICES * (REAL_SERVERS - 1), 0));
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .unwrap_or_default();
    println!("installed {SERVICES}×{REAL_SERVERS} in {:.3} s, settled; daemon {rss}", install.as_secs_f64());
}
