//! The IPVS codec against the layout the kernel and libipvs use, through
//! whole netlink messages, and against broken input.

use netlink_packet_core::{Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_generic::GenlMessage;
use rlvs_ipvs::attr::{cmd, STATE_BACKUP};
use rlvs_ipvs::msg::{fwd, AF_INET, AF_INET6, SVC_F_PERSISTENT};
use rlvs_ipvs::nla::{Attr, Value};
use rlvs_ipvs::{Daemon, Dest, IpvsMessage, Service, ServiceId, Stats, Timeouts};
use std::net::IpAddr;

const FAMILY_ID: u16 = 0x1d;

fn wire(m: IpvsMessage) -> Vec<u8> {
    let mut g = GenlMessage::from_payload(m);
    g.set_resolved_family_id(FAMILY_ID);
    let mut nl = NetlinkMessage::from(g);
    nl.header = NetlinkHeader::default();
    nl.header.flags = NLM_F_REQUEST;
    nl.header.sequence_number = 7;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

fn unwire(buf: &[u8]) -> IpvsMessage {
    let nl = NetlinkMessage::<GenlMessage<IpvsMessage>>::deserialize(buf).expect("a whole message");
    assert_eq!(nl.header.message_type, FAMILY_ID);
    match nl.payload {
        NetlinkPayload::InnerMessage(g) => g.payload,
        other => panic!("not an IPVS message: {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web() -> Service {
    Service {
        id: ServiceId::Addr { protocol: 6, addr: ip("10.0.0.100"), port: 80 },
        sched: "rr".into(),
        pe_name: None,
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        stats: None,
    }
}

#[test]
fn a_new_service_has_the_layout_libipvs_sends() {
    let b = wire(IpvsMessage::service(cmd::NEW_SERVICE, &web()));
    // nlmsghdr (16) + genlmsghdr: command 1, version 1.
    assert_eq!(u16::from_ne_bytes([b[4], b[5]]), FAMILY_ID);
    assert_eq!(&b[16..18], &[cmd::NEW_SERVICE, 1]);
    let nest = &b[20..];
    // IPVS_CMD_ATTR_SERVICE, nested.
    assert_eq!(u16::from_ne_bytes([nest[2], nest[3]]), 1 | 0x8000);
    let inner = &nest[4..];
    let expect: &[(u16, &[u8])] = &[
        (1, &2u16.to_ne_bytes()),                                  // AF_INET
        (2, &6u16.to_ne_bytes()),                                  // IPPROTO_TCP
        (3, &[10, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // nf_inet_addr
        (4, &[0, 80]),                                             // port, network order
        (6, b"rr\0"),                                              // scheduler
        (7, &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),                // flags, mask ~0
        (8, &0u32.to_ne_bytes()),                                  // timeout
        (9, &[0xff, 0xff, 0xff, 0xff]),                            // netmask
    ];
    let mut at = 0;
    for (kind, value) in expect {
        let len = usize::from(u16::from_ne_bytes([inner[at], inner[at + 1]]));
        assert_eq!(u16::from_ne_bytes([inner[at + 2], inner[at + 3]]), *kind);
        assert_eq!(&inner[at + 4..at + len], *value, "attribute {kind}");
        at += (len + 3) & !3;
    }
    assert_eq!(at, inner.len(), "nothing after the netmask");
}

#[test]
fn services_survive_the_wire_by_address_and_by_mark() {
    let mut persistent = web();
    persistent.id = ServiceId::Addr { protocol: 17, addr: ip("2001:db8::1"), port: 53 };
    persistent.flags = SVC_F_PERSISTENT;
    persistent.timeout = 600;
    persistent.netmask = 64;
    persistent.pe_name = Some("sip".into());
    let mut mark = web();
    mark.id = ServiceId::Fwmark { af: AF_INET, mark: 42 };
    mark.sched = "wlc".into();
    mark.netmask = 0xffff_ff00;
    for s in [web(), persistent, mark] {
        let back = unwire(&wire(IpvsMessage::service(cmd::NEW_SERVICE, &s)));
        assert_eq!(back.cmd, cmd::NEW_SERVICE);
        assert_eq!(back.service_of().unwrap(), s);
    }
}

#[test]
fn a_delete_names_the_service_only() {
    let back = unwire(&wire(IpvsMessage::service(cmd::DEL_SERVICE, &web())));
    let s = back.service_of().unwrap();
    assert_eq!(s.id, web().id);
    assert_eq!(s.sched, "");
}

#[test]
fn destinations_survive_the_wire_with_their_tunnel() {
    let d = Dest {
        addr: Some(ip("192.168.100.2")),
        port: 80,
        fwd_method: fwd::TUNNEL,
        weight: 3,
        u_thresh: 100,
        l_thresh: 10,
        tun_type: 1,
        tun_port: 6080,
        tun_flags: 1,
        ..Default::default()
    };
    let back = unwire(&wire(IpvsMessage::dest(cmd::NEW_DEST, &web().id, &d)));
    assert_eq!(back.service_of().unwrap().id, web().id);
    assert_eq!(back.dest_of(AF_INET).unwrap(), d);
    let v6 =
        Dest { addr: Some(ip("2001:db8::10")), port: 8080, fwd_method: fwd::MASQ, weight: 2, ..Default::default() };
    let back = unwire(&wire(IpvsMessage::dest(cmd::SET_DEST, &web().id, &v6)));
    assert_eq!(back.dest_of(AF_INET).unwrap(), v6);
}

/// A dump entry as the kernel writes it: counters in a 32-bit nest and a
/// 64-bit one; the 64-bit one is read.
#[test]
fn a_dumped_destination_reads_its_counters_from_the_64_bit_nest() {
    let stats =
        Stats { conns: 5, inpkts: 1 << 33, outpkts: 7, inbytes: 1 << 40, outbytes: 9, cps: 1, ..Default::default() };
    let old32 = vec![Attr::new(1, Value::U32(5)), Attr::new(2, Value::U32(1))];
    let nest = vec![
        Attr::new(1, Value::Bytes(vec![192, 168, 100, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        Attr::new(2, Value::Be16(80)),
        Attr::new(3, Value::U32(fwd::DROUTE | 0x0100)),
        Attr::new(4, Value::U32(1)),
        Attr::new(7, Value::U32(12)),
        Attr::new(8, Value::U32(34)),
        Attr::new(9, Value::U32(0)),
        Attr::new(10, Value::Nested(old32)),
        Attr::new(11, Value::U16(AF_INET)),
        Attr::new(12, Value::Nested(stats.attrs64())),
    ];
    let m = IpvsMessage { cmd: cmd::NEW_DEST, attrs: vec![Attr::new(2, Value::Nested(nest))] };
    let d = unwire(&wire(m)).dest_of(AF_INET).unwrap();
    assert_eq!(d.addr, Some(ip("192.168.100.3")));
    assert_eq!(d.fwd_method, fwd::DROUTE, "connection flags beyond the method are masked");
    assert_eq!((d.active_conns, d.inact_conns), (12, 34));
    assert_eq!(d.stats, Some(stats));
}

#[test]
fn timeouts_info_and_daemons() {
    let t = Timeouts { tcp: 900, tcp_fin: 120, udp: 300 };
    assert_eq!(unwire(&wire(IpvsMessage::set_config(&t))).timeouts_of().unwrap(), t);
    let info = IpvsMessage {
        cmd: cmd::SET_INFO,
        attrs: vec![Attr::new(1, Value::U32(0x010201)), Attr::new(2, Value::U32(4096))],
    };
    assert_eq!(unwire(&wire(info)).info_of().unwrap(), (0x010201, 4096));
    let d = Daemon {
        state: STATE_BACKUP,
        mcast_ifn: "eth0".into(),
        sync_id: 7,
        sync_maxlen: Some(1472),
        mcast_group: Some(ip("224.0.0.81")),
        mcast_port: Some(8848),
        mcast_ttl: Some(1),
    };
    assert_eq!(unwire(&wire(IpvsMessage::new_daemon(&d))).daemons_of().unwrap(), vec![d.clone()]);
    let d6 = Daemon { mcast_group: Some(ip("ff02::8848")), ..d };
    assert_eq!(unwire(&wire(IpvsMessage::new_daemon(&d6))).daemons_of().unwrap(), vec![d6]);
}

/// Every truncation and a sweep of corrupted bytes of real messages give
/// an error or a value, never a panic.
#[test]
fn broken_answers_are_errors_not_panics() {
    let d = Dest { addr: Some(ip("10.1.1.1")), port: 80, weight: 1, ..Default::default() };
    for m in [IpvsMessage::service(cmd::NEW_SERVICE, &web()), IpvsMessage::dest(cmd::NEW_DEST, &web().id, &d)] {
        let payload = {
            let mut b = vec![0; m.buffer_len()];
            m.emit(&mut b);
            b
        };
        for cut in 0..payload.len() {
            let short = &payload[..cut];
            if let Ok(attrs) = rlvs_ipvs::nla::parse(short) {
                let m = IpvsMessage {
                    cmd: cmd::NEW_DEST,
                    attrs: attrs.iter().map(|r| Attr::new(r.kind, Value::Bytes(r.bytes.to_vec()))).collect(),
                };
                let _ = m.service_of();
                let _ = m.dest_of(AF_INET);
            }
        }
        for i in 0..payload.len() {
            for v in [0u8, 0x03, 0xff] {
                let mut bad = payload.clone();
                bad[i] = v;
                if let Ok(attrs) = rlvs_ipvs::nla::parse(&bad) {
                    for r in attrs {
                        let _ = rlvs_ipvs::Service::from_nest(r.bytes);
                        let _ = rlvs_ipvs::Dest::from_nest(r.bytes, AF_INET6);
                        let _ = rlvs_ipvs::Daemon::from_nest(r.bytes);
                    }
                }
            }
        }
    }
}
