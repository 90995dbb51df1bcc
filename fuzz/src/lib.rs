//! What the targets share: a director configured through the ipvsadm face
//! with a service of every forwarding method in both families, so that
//! arbitrary frames meet real tables, and ipvsadm run in process.

use rlvs_adm::{Backend, BackendError, Outcome};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::{Director, Time};

pub struct InProcess(pub Director);

impl Backend for InProcess {
    fn call(&mut self, req: Request) -> Result<Response, BackendError> {
        Ok(rlvs_ctl::handle(&mut self.0, req, Time::ZERO, "none"))
    }
}

/// Runs ipvsadm with `args` against `b` (names never resolved).
pub fn ipvsadm(b: &mut InProcess, args: &[String]) -> Outcome {
    rlvs_adm::resolve::set_dns(false);
    let mut argv = vec!["ipvsadm".to_string()];
    argv.extend(args.iter().cloned());
    rlvs_adm::run(&argv, b, &mut &b""[..])
}

/// The services the packet target's frames are aimed at (see
/// fuzz/seeds/packet): DR, NAT, TUN, FULLNAT and a persistent service on
/// 10.0.0.100, and DR and NAT on 2001:db8::100.
pub const SERVICES: &[&str] = &[
    "-A -t 10.0.0.100:80 -s rr",
    "-a -t 10.0.0.100:80 -r 10.1.1.244:80 -g",
    "-a -t 10.0.0.100:80 -r 10.1.1.245:80 -g",
    "-A -u 10.0.0.100:53 -s wlc",
    "-a -u 10.0.0.100:53 -r 192.168.100.2:5353 -m",
    "-A -t 10.0.0.100:8080 -s sh",
    "-a -t 10.0.0.100:8080 -r 10.1.1.246:8080 -i",
    "-A -t 10.0.0.100:443 -s lc -p 300",
    "-a -t 10.0.0.100:443 -r 192.168.100.3:443 -m",
    "-A -t [2001:db8::100]:80 -s rr",
    "-a -t [2001:db8::100]:80 -r [2001:db8::244]:80 -g",
    "-A -u [2001:db8::100]:53 -s rr",
    "-a -u [2001:db8::100]:53 -r [2001:db8:1::2]:5353 -m",
];

pub fn director() -> InProcess {
    let mut b = InProcess(Director::new());
    for line in SERVICES {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let out = ipvsadm(&mut b, &args);
        assert_eq!(out.code, 0, "{line}: {}", out.stderr);
    }
    b
}

/// The keepalived.conf reader and builder: any text, never a panic.
pub fn conf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = rlvs_conf::load_str("fuzz.conf", &text, rlvs_conf::Options::default());
}

/// The VRRP decoder and the checks an advert meets before the state
/// machine takes it: a v2 instance with a password or a v3 one (first
/// byte), the sender (second byte), the TTL (third) and the payload.
pub fn vrrp(data: &[u8]) {
    use rlvs_vrrp::{Advert, Instance, InstanceConfig};
    use std::net::IpAddr;
    if data.len() < 3 {
        return;
    }
    let src: IpAddr = if data[0] & 1 == 0 {
        IpAddr::from([10, 0, 0, data[1]])
    } else {
        IpAddr::from([0xfe80, 0, 0, 0, 0, 0, 0, u16::from(data[1])])
    };
    let (dst, vip): (IpAddr, IpAddr) = if src.is_ipv4() {
        ([224, 0, 0, 18].into(), [10, 0, 0, 100].into())
    } else {
        ("ff02::12".parse().unwrap(), "fe80::100".parse().unwrap())
    };
    let mut cfg = InstanceConfig::new("VI_1", 51, 100, vec![vip]);
    if data[0] & 2 != 0 {
        cfg.version = 3;
    } else {
        cfg.auth_pass = Some(*b"secret\0\0");
    }
    // With bit 2 set, the checksum is made right first, so that mutations
    // reach the checks behind it.
    let mut payload = data[3..].to_vec();
    if data[0] & 4 != 0 {
        let family = if src.is_ipv4() { rlvs_wire::vrrp::Family::V4 } else { rlvs_wire::vrrp::Family::V6 };
        if let Ok(mut p) = rlvs_wire::vrrp::VrrpPacket::new_checked(&mut payload[..], family) {
            let pseudo = (p.version() == 3).then_some((src, dst));
            p.fill_checksum(pseudo);
        }
    }
    let mut i = Instance::new(cfg);
    let _ = i.on_advert(std::time::Duration::from_secs(1), &Advert { src, dst, ttl: data[2], payload: &payload });
}

/// The IPVS sync message decoder (v0 and v1), as a backup reads a datagram.
pub fn sync(data: &[u8]) {
    let _ = rlvs_wire::ipvs_sync::parse(data);
}

thread_local! {
    static PACKET_STATE: std::cell::RefCell<(InProcess, Time)> = std::cell::RefCell::new((bounded(), Time::ZERO));
}

/// The packet target's director: its table bounded at 256 connections,
/// drop_entry and secure_tcp automatic and short of memory past 240, so
/// that admission at the bound, replacement, the sweep and the stricter
/// TCP table are all in play.
fn bounded() -> InProcess {
    let mut b = director();
    let cfg = rlvs_lvs::defence::DefenceConfig {
        limit: Some(256),
        bytes_per_conn: 4096,
        amemthresh: 16,
        drop_entry: 1,
        secure_tcp: 1,
        ..Default::default()
    };
    b.0.set_defence(cfg).expect("valid defences");
    b
}

/// The packet path: arbitrary IPv4 and IPv6 packets (the first byte picks
/// the family, as on the wire) through a director with every forwarding
/// method configured, twice each so that a connection's second packet
/// meets the entry its first made. The director lives across inputs (as
/// the engine's does), so connections from earlier inputs are in play.
pub fn packet(data: &[u8]) {
    PACKET_STATE.with(|s| {
        let (b, now) = &mut *s.borrow_mut();
        for _ in 0..2 {
            *now = *now + rlvs_lvs::time::Span::from_secs(1);
            let _ = match data.first().map(|v| v >> 4) {
                Some(6) => b.0.process_ipv6(data, None, *now),
                _ => b.0.process_ipv4(data, None, *now),
            };
        }
        b.0.defend(*now);
        b.0.expire(*now);
    });
}

/// The ipvsadm argv parser, and the commands it then runs against a
/// director in process: the input is the command line, split at NULs.
pub fn adm(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.split('\0').map(str::to_string).collect();
    let mut b = director();
    let _ = ipvsadm(&mut b, &args);
}

/// Every target by name, for the AFL binaries and the coverage replay.
pub const TARGETS: [(&str, fn(&[u8])); 5] =
    [("conf", conf), ("vrrp", vrrp), ("sync", sync), ("packet", packet), ("adm", adm)];
