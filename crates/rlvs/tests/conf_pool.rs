//! A virtual server's pool rules from keepalived.conf, end to end with real
//! listeners: quorum with its notifiers and sorry server, inhibit_on_failure
//! (weight 0 instead of removal), notify_up / notify_down, and omega's
//! last notifiers when the daemon stops.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};
use std::time::Duration;

fn conf(dir: &str) -> String {
    let note = format!("{dir}/note.sh");
    format!(
        "
virtual_server 10.0.0.100 80 {{
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    quorum 2
    quorum_up \"{note} quorum-up\"
    quorum_down \"{note} quorum-down\"
    sorry_server 10.2.0.9 80
    omega
    real_server 10.2.0.1 80 {{
        weight 1
        notify_up \"{note} rs1-up\"
        notify_down \"{note} rs1-down\"
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server 10.2.0.2 80 {{
        weight 1
        inhibit_on_failure
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"
    )
}

/// The real-server lines of `ipvsadm -Ln`, as "address weight".
fn pool(lab: &Lab, ns: &str) -> Vec<String> {
    let (l, _, _) = adm(lab, ns, "-Ln");
    l.lines()
        .filter(|l| l.trim_start().starts_with("-> 10."))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", f[1], f[3])
        })
        .collect()
}

fn wait_pool(lab: &Lab, ns: &str, want: &[&str]) -> Vec<String> {
    let got = Lab::wait_for(Duration::from_secs(15), || {
        let p = pool(lab, ns);
        (p == want).then_some(p)
    });
    got.unwrap_or_else(|| panic!("pool never became {want:?}: {:?}\n{}", pool(lab, ns), lab.log("daemon")))
}

fn notes(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.dir().join("notes")).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Notifiers of one event run side by side, so their lines may land in
/// either order: compared as multisets.
fn wait_notes(lab: &Lab, want: &[&str]) {
    let mut want_sorted: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want_sorted.sort();
    let ok = Lab::wait_for(Duration::from_secs(10), || {
        let mut got = notes(lab);
        got.sort();
        (got == want_sorted).then_some(())
    });
    assert!(ok.is_some(), "notes {:?}, want {want:?}\n{}", notes(lab), lab.log("daemon"));
}

#[test]
fn quorum_sorry_server_inhibit_and_notifiers_follow_the_checks() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:0c:01", "10.2.0.254/24").unwrap();
    let rs1 = lab.host("rs1", "eth0", "02:00:00:00:0c:02", "10.2.0.1/24").unwrap();
    let rs2 = lab.host("rs2", "eth0", "02:00:00:00:0c:03", "10.2.0.2/24").unwrap();
    web::tcp_greeter(&mut lab, &rs1, "rs1-a", "rs1", 80).unwrap();
    web::tcp_greeter(&mut lab, &rs2, "rs2-a", "rs2", 80).unwrap();
    let d = lab.dir().to_string_lossy().into_owned();
    let note = format!("{d}/note.sh");
    std::fs::write(&note, format!("#!/bin/sh\necho \"$1\" >> {d}/notes\n")).unwrap();
    std::fs::set_permissions(&note, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{d}/k.conf");
    std::fs::write(&path, conf(&d)).unwrap();
    let rlvs = rlvs();
    lab.spawn(&dir, "daemon", &[&rlvs, "daemon", "--engine", "none", "--log", "info", "-f", &path]).unwrap();

    // Both up: quorum 2 reached, no sorry server.
    wait_pool(&lab, &dir, &["10.2.0.1:80 1", "10.2.0.2:80 1"]);

    // rs2 (inhibit_on_failure) stops: kept at weight 0 rather than removed;
    // the quorum is lost (quorum_down) and the sorry server replaces the
    // live servers.
    lab.stop("rs2-a", libc::SIGKILL).unwrap();
    wait_pool(&lab, &dir, &["10.2.0.2:80 0", "10.2.0.9:80 1"]);
    wait_notes(&lab, &["quorum-down"]);
    let log = lab.log("daemon");
    assert!(log.contains("Disabling service [10.2.0.2]:tcp:80 of VS [10.0.0.100]:tcp:80"), "{log}");
    assert!(log.contains("Adding sorry server [10.2.0.9]:tcp:80 to VS [10.0.0.100]:tcp:80"), "{log}");

    // rs2 back: quorum regained (quorum_up), sorry server out, pool back.
    web::tcp_greeter(&mut lab, &rs2, "rs2-b", "rs2", 80).unwrap();
    wait_pool(&lab, &dir, &["10.2.0.1:80 1", "10.2.0.2:80 1"]);
    wait_notes(&lab, &["quorum-down", "quorum-up"]);

    // rs1 stops: removed (notify_down), quorum lost again, rs2 (inhibited)
    // held at 0 while the sorry server serves; rs1 back: notify_up.
    lab.stop("rs1-a", libc::SIGKILL).unwrap();
    wait_pool(&lab, &dir, &["10.2.0.2:80 0", "10.2.0.9:80 1"]);
    wait_notes(&lab, &["quorum-down", "quorum-up", "rs1-down", "quorum-down"]);
    assert!(lab.log("daemon").contains("Removing service [10.2.0.1]:tcp:80 from VS [10.0.0.100]:tcp:80"));
    web::tcp_greeter(&mut lab, &rs1, "rs1-b", "rs1", 80).unwrap();
    wait_pool(&lab, &dir, &["10.2.0.1:80 1", "10.2.0.2:80 1"]);
    wait_notes(&lab, &["quorum-down", "quorum-up", "rs1-down", "quorum-down", "rs1-up", "quorum-up"]);

    // SIGTERM with omega: the notify_down of the servers in the pool (rs1
    // has one) and the quorum_down run on the way out.
    lab.stop("daemon", libc::SIGTERM).unwrap();
    wait_notes(
        &lab,
        &["quorum-down", "quorum-up", "rs1-down", "quorum-down", "rs1-up", "quorum-up", "rs1-down", "quorum-down"],
    );
    assert!(lab.log("daemon").contains("Shutting down service [10.2.0.1]:tcp:80 from VS [10.0.0.100]:tcp:80"));
}

/// The checkers follow the table, not what they sent: a real server an
/// operator deleted with ipvsadm is added again (not edited, which would
/// fail) when its checker next changes its weight, and one the operator
/// re-weighted is set back.
#[test]
fn checkers_put_back_what_an_operator_changed_at_their_next_transition() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:0c:11", "10.2.0.254/24").unwrap();
    let d = lab.dir().to_string_lossy().into_owned();
    // misc_dynamic: the script's exit code minus 2 is the weight.
    let code = format!("{d}/code");
    std::fs::write(&code, "5").unwrap();
    let script = format!("{d}/check.sh");
    std::fs::write(&script, format!("#!/bin/sh\nexit $(cat {code})\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{d}/k.conf");
    std::fs::write(
        &path,
        format!(
            "global_defs {{\n    enable_script_security\n    script_user root\n}}\n\
             virtual_server 10.0.0.100 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind DR\n    protocol TCP\n\
             real_server 10.2.0.1 80 {{\n        weight 1\n        MISC_CHECK {{\n            misc_path {script}\n\
             misc_dynamic\n            misc_timeout 2\n        }}\n    }}\n}}\n"
        ),
    )
    .unwrap();
    let rlvs = rlvs();
    lab.spawn(&dir, "daemon", &[&rlvs, "daemon", "--engine", "none", "--log", "info", "-f", &path]).unwrap();
    wait_pool(&lab, &dir, &["10.2.0.1:80 3"]);
    adm_ok(&lab, &dir, ["-d -t 10.0.0.100:80 -r 10.2.0.1:80"]);
    wait_pool(&lab, &dir, &[]);
    std::fs::write(&code, "6").unwrap();
    wait_pool(&lab, &dir, &["10.2.0.1:80 4"]);
    adm_ok(&lab, &dir, ["-e -t 10.0.0.100:80 -r 10.2.0.1:80 -g -w 9"]);
    wait_pool(&lab, &dir, &["10.2.0.1:80 9"]);
    std::fs::write(&code, "7").unwrap();
    wait_pool(&lab, &dir, &["10.2.0.1:80 5"]);
    let log = lab.log("daemon");
    assert!(!log.contains("refused"), "{log}");
}
