//! Replays the scheduling scenarios of tests/golden/sched/scenarios.txt on
//! the core and compares each pick with what the real kernel (Debian's 6.1
//! in the lab) picked for the same commands and connections
//! (tests/golden/sched/kernel-picks.txt, made by lab/capture-sched-sequences.sh).

use rlvs_lvs::types::svc_flags::{SCHED1, SCHED2};
use rlvs_lvs::{DestConfig, Director, FwdMethod, Protocol, ServiceConfig, ServiceKey, Time, Verdict};
use rlvs_wire::{IpProtocol, Ipv4Repr, UdpRepr};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../tests/golden/sched/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn scenarios() -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in golden("scenarios.txt").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_prefix("scenario ") {
            Some(name) => out.push((name.to_string(), Vec::new())),
            None => out.last_mut().unwrap().1.push(line.to_string()),
        }
    }
    out
}

fn datagram(src: Ipv4Addr, cport: u16) -> Vec<u8> {
    let ip = Ipv4Repr { src, dst: VIP, protocol: IpProtocol::Udp, payload_len: 9, ttl: 64, ident: 0, dont_frag: false };
    let mut b = vec![0u8; ip.buffer_len()];
    ip.emit(&mut b);
    UdpRepr { src_port: cport, dst_port: 53, payload_len: 1 }.emit(&mut b[20..]);
    b
}

/// The few ipvsadm options the scenarios use.
fn opts(words: &[&str]) -> HashMap<String, String> {
    words.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].to_string(), c[1].to_string())).collect()
}

/// `port` carries on from scenario to scenario, as in the lab's run, since
/// sh-port and mh-port hash it.
fn replay(steps: &[String], port: &mut u16) -> Vec<String> {
    let svc = ServiceKey::new(Protocol::Udp, VIP.into(), 53);
    let mut d = Director::new();
    let mut picks = Vec::new();
    for step in steps {
        let w: Vec<&str> = step.split_whitespace().collect();
        let o = opts(&w[1..]);
        let dest = |o: &HashMap<String, String>| {
            let addr: IpAddr = o["-r"].parse().unwrap();
            let weight = o.get("-w").map_or(1, |w| w.parse().unwrap());
            let mut c = DestConfig::new(addr, 53, FwdMethod::DirectRoute, weight);
            c.u_threshold = o.get("-x").map_or(0, |x| x.parse().unwrap());
            c.l_threshold = o.get("-y").map_or(0, |y| y.parse().unwrap());
            c
        };
        let config = |o: &HashMap<String, String>| {
            let scheduler = o.get("-s").cloned().unwrap_or_else(|| "wlc".into());
            let flags = o.get("-b").map_or(0, |b| {
                b.split(',').map(|f| if f.ends_with("fallback") { SCHED1 } else { SCHED2 }).fold(0, |a, f| a | f)
            });
            ServiceConfig { scheduler, flags, ..Default::default() }
        };
        match w[0] {
            "-A" => d.add_service(svc, config(&o), Time::ZERO).unwrap(),
            "-E" => d.edit_service(&svc, config(&o), Time::ZERO).unwrap(),
            "-a" => d.add_dest(&svc, dest(&o), Time::ZERO).unwrap(),
            "-e" => d.edit_dest(&svc, dest(&o)).unwrap(),
            "-d" => d.del_dest(&svc, o["-r"].parse().unwrap(), 53, Time::ZERO).unwrap(),
            "send" | "clients" => {
                for i in 0..w[1].parse::<u8>().unwrap() {
                    *port += 1;
                    let src = if w[0] == "send" { Ipv4Addr::new(10, 1, 1, 10) } else { Ipv4Addr::new(10, 1, 2, i + 1) };
                    picks.push(match d.process_ipv4(&datagram(src, *port), None, Time::ZERO) {
                        Verdict::Forward(f) => f.daddr.to_string(),
                        _ => "-".into(),
                    });
                }
            }
            other => panic!("unknown step {other}"),
        }
    }
    picks
}

#[test]
fn picks_match_the_real_kernel() {
    let kernel: HashMap<String, Vec<String>> = golden("kernel-picks.txt")
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap().to_string(), w.map(String::from).collect())
        })
        .collect();
    let all = scenarios();
    assert!(all.len() >= 8);
    let mut port = 20000;
    for (name, steps) in all {
        let want = kernel.get(&name).unwrap_or_else(|| panic!("no kernel record for {name}"));
        assert!(!want.is_empty(), "{name}: empty kernel record");
        assert_eq!(&replay(&steps, &mut port), want, "scenario {name}");
    }
}
