//! `ipvsadm -L --stats` shows what the kernel's estimator last folded (a
//! tick every 2 s), not live counters: right after traffic a listing may
//! not count it yet, and from 2.1 s on it counts all of it. The phase of
//! the tick cannot be known, so both tests check that property, not a
//! moment: first on rlvs's own engine with real datagrams, then on the lab
//! capture of kernel IPVS and rlvs side by side (lab/counter-delays.sh).

mod common;

use common::*;
use rlvs_netlab::seed::{self, VIP, WEB1};
use rlvs_netlab::Lab;
use std::time::{Duration, Instant};

const FLOWS: u64 = 5;
const DATAGRAMS: u64 = 4;
const PAYLOAD: u64 = 100;
/// 20 bytes of IPv4 header and 8 of UDP on each datagram.
const WIRE: u64 = PAYLOAD + 28;
/// Delays after the traffic at which the listing is taken (seconds).
const DELAYS: [f64; 8] = [0.0, 0.5, 1.0, 1.5, 2.1, 2.5, 3.0, 4.5];

/// The UDP service's Conns, InPkts and InBytes in one listing.
fn udp_figures(lab: &Lab, ns: &str) -> (u64, u64, u64) {
    let (out, _, code) = adm(lab, ns, "-Ln --stats --exact");
    assert_eq!(code, 0, "{out}");
    let line = out.lines().find(|l| l.starts_with("UDP")).unwrap_or_else(|| panic!("no UDP service in\n{out}"));
    let f: Vec<u64> = line.split_whitespace().skip(2).map(|w| w.parse().unwrap()).collect();
    (f[0], f[1], f[3])
}

#[test]
fn listings_hold_all_traffic_from_2_1_s_after_it_and_never_more_before() {
    let mut lab = Lab::new().unwrap();
    let t = seed::build(&mut lab, None).unwrap();
    lab.ok(&t.web1, &[&rlvs(), "realserver", "start", "--vip", VIP]).unwrap();
    lab.ok(&t.director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo"]).unwrap();
    start_daemon(&mut lab, &t.director.clone(), "daemon", &[]);
    adm_ok(&lab, &t.director, [format!("-A -u {VIP}:5353 -s rr"), format!("-a -u {VIP}:5353 -r {WEB1} -g")]);
    seed::add_client_route(&lab, &t).unwrap();
    // Nothing sent yet: a folded listing shows nothing.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(udp_figures(&lab, &t.director), (0, 0, 0));

    let send = format!(
        "import socket\nfor _ in range({FLOWS}):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n    \
         for _ in range({DATAGRAMS}):\n        s.sendto(b'x' * {PAYLOAD}, ('{VIP}', 5353))\n    s.close()\n"
    );
    lab.ok(&t.client, &["python3", "-c", &send]).unwrap();
    let sent_at = Instant::now();
    let all = (FLOWS, FLOWS * DATAGRAMS, FLOWS * DATAGRAMS * WIRE);
    let mut seen = Vec::new();
    for delay in DELAYS {
        let at = sent_at + Duration::from_secs_f64(delay);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        seen.push((delay, udp_figures(&lab, &t.director)));
    }
    for (delay, (conns, pkts, bytes)) in &seen {
        assert!(*conns <= all.0 && *pkts <= all.1 && *bytes <= all.2, "more than was sent at +{delay} s: {seen:?}");
        if *delay >= 2.1 {
            assert_eq!((*conns, *pkts, *bytes), all, "not all of it at +{delay} s: {seen:?}");
        }
    }
}

/// One line of the capture: who listed, after how long, and three figures.
struct Row {
    who: String,
    delay: f64,
    figures: [u64; 3],
}

#[test]
fn the_lab_capture_agrees_with_the_kernel_from_2_1_s_after_traffic() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden/lab/counter-delays.txt");
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains("counter semantics: PASS"), "the capture's own verdict:\n{text}");
    let rows: Vec<Row> = text
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let delay = w.get(1)?.strip_prefix('+')?.parse().ok()?;
            let figures = [w.get(2)?.parse().ok()?, w.get(3)?.parse().ok()?, w.get(4)?.parse().ok()?];
            Some(Row { who: w[0].to_string(), delay, figures })
        })
        .collect();
    let last = |who: &str| rows.iter().rev().find(|r| r.who == who).map(|r| r.figures).unwrap();
    // TCP's packet count follows the client's timing (a delayed ACK merged
    // or not), so each engine is held to what the client sent in its run;
    // the UDP service's figures are the same traffic for both.
    let (kernel_sent, rlvs_sent) = (last("kernel-sent"), last("rlvs-sent"));
    let mut checked = 0;
    for r in rows.iter().filter(|r| r.delay >= 2.1 && !r.who.ends_with("-sent")) {
        match r.who.as_str() {
            "kernel" => assert_eq!(r.figures[..2], kernel_sent[..2], "kernel at +{}", r.delay),
            "rlvs" => assert_eq!(r.figures[..2], rlvs_sent[..2], "rlvs at +{}", r.delay),
            "rlvs-udp" => {
                let kernel = rows.iter().find(|k| k.who == "kernel-udp" && k.delay == r.delay).unwrap();
                assert_eq!(r.figures, kernel.figures, "UDP at +{}", r.delay);
                assert_eq!(r.figures, [FLOWS, FLOWS * DATAGRAMS, FLOWS * DATAGRAMS * WIRE]);
            }
            _ => continue,
        }
        checked += 1;
    }
    assert_eq!(checked, 12, "four delays from 2.1 s on, three rows each");
}
