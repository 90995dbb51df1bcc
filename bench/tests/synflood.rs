//! The SYN flood acceptance test, shortened for CI: per method (DR, NAT)
//! the path's SYN capacity measured first, then a flood at 80 % of it from
//! 2^20 spoofed sources against a table bounded at 30,000 connections,
//! with 100 legitimate curls (2 s timeout) in its middle, defences on and
//! off. With the defences on, at least 90 % of the curls succeed during
//! the flood, all after it, the table never passes its bound and it sheds
//! the flood by its own timeouts. The full-length run (60 s, 1,000 curls)
//! is `rlvs-bench synflood --drain` (BENCHMARKS.md).

use std::process::Command;

#[test]
fn a_syn_flood_leaves_room_for_legitimate_clients_with_the_defences_on() {
    let rlvs = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug/rlvs");
    let engine = std::env::var("RLVS_ENGINE").unwrap_or_else(|_| "afxdp".into());
    let out = Command::new(env!("CARGO_BIN_EXE_rlvs-bench"))
        .args(["synflood", "--methods", "dr,nat", "--seconds", "12", "--curls", "100", "--limit", "30000"])
        .args(["--drain", "--require", "0.9", "--engine", &engine, "--rlvs", rlvs])
        .output()
        .expect("running rlvs-bench");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "{text}");
    // Off, the bound refuses: the table filled, and nothing replaced entries.
    for method in ["DR", "NAT"] {
        let off = text.lines().find(|l| l.starts_with(&format!("| {method} | off |"))).expect("a row per run");
        let cells: Vec<&str> = off.split('|').map(str::trim).collect();
        let refused: u64 = cells[10].parse().unwrap();
        assert!(refused > 0, "{off}");
    }
}
