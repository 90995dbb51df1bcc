//! The traffic filter's tables have a size (`--filter-entries`); a request
//! that would add a rule to a full one is refused before the table
//! changes, with ipvsadm's message for the kernel's ENOMEM, and the log
//! says which table is full and what to raise.

mod common;

use common::*;
use rlvs_netlab::Lab;

#[test]
fn a_full_filter_table_refuses_the_request_and_leaves_the_table_as_it_was() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("d", "eth0", "02:00:00:00:12:01", "10.2.0.254/24").unwrap();
    start_daemon(&mut lab, &dir, "daemon", &["--filter-entries", "2"]);
    adm_ok(&lab, &dir, ["-A -t 10.0.0.1:80", "-A -t 10.0.0.2:80", "-a -t 10.0.0.1:80 -r 10.2.0.1 -g"]);
    let before = adm(&lab, &dir, "-Sn").0;
    let (out, err, code) = adm(&lab, &dir, "-A -t 10.0.0.3:80");
    assert_eq!((out.as_str(), err.as_str(), code), ("", "Memory allocation problem\n", 255));
    // NAT real servers fill their own table: two fit, a third does not.
    adm_ok(&lab, &dir, ["-a -t 10.0.0.2:80 -r 10.2.0.2:8080 -m", "-a -t 10.0.0.2:80 -r 10.2.0.3:8080 -m"]);
    let (_, err, _) = adm(&lab, &dir, "-a -t 10.0.0.1:80 -r 10.2.0.4:8080 -m");
    assert_eq!(err, "Memory allocation problem\n");
    // A real server already in the table shares its rule: room enough.
    adm_ok(&lab, &dir, ["-a -t 10.0.0.1:80 -r 10.2.0.2:8080 -m"]);
    let after = adm(&lab, &dir, "-Sn").0;
    assert!(!after.contains("10.0.0.3") && !after.contains("10.2.0.4"), "{after}");
    assert!(after.starts_with(before.lines().next().unwrap()), "{before}\n{after}");
    let log = plain_log(&lab, "daemon");
    assert!(log.contains("the traffic filter's services table is full (2 entries): raise --filter-entries"), "{log}");
    assert!(log.contains("the traffic filter's natreplies table is full (2 entries)"), "{log}");
    // Room again once a service goes.
    adm_ok(&lab, &dir, ["-D -t 10.0.0.2:80", "-A -t 10.0.0.3:80"]);
}
