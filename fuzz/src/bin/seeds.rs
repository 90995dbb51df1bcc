//! Writes each target's starting corpus into `fuzz/seeds/<target>/`, so
//! the fuzzer starts past the first length checks: the keepalived corpus,
//! adverts as rlvs sends them, sync messages as the kernel lays them out,
//! frames towards the configured services plus the seed's captured curl,
//! and the command lines of ipvsadm 1.31's golden captures.
//! Run from the fuzz directory: `cargo run --release --bin seeds`.

use rlvs_vrrp::InstanceConfig;
use rlvs_wire::ipvs_sync::{flags, Builder, SyncConn};
use rlvs_wire::{IpProtocol, Ipv4Repr, Ipv6Repr, TcpFlags, TcpPacket, TcpRepr, UdpRepr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), data).unwrap();
}

fn tcp4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 40 + payload.len()];
    Ipv4Repr {
        src,
        dst,
        protocol: IpProtocol::Tcp,
        payload_len: 20 + payload.len(),
        ttl: 64,
        ident: 1,
        dont_frag: true,
    }
    .emit(&mut b);
    TcpRepr { src_port: sport, dst_port: dport, seq: 1000, ack: 1, flags: TcpFlags(flags), window: 64240 }
        .emit(&mut b[20..]);
    b[40..].copy_from_slice(payload);
    TcpPacket::new_checked(&mut b[20..]).unwrap().fill_checksum_v4(src, dst);
    b
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut b = vec![0u8; 28 + 12];
    Ipv4Repr { src, dst, protocol: IpProtocol::Udp, payload_len: 20, ttl: 64, ident: 2, dont_frag: false }.emit(&mut b);
    UdpRepr { src_port: 40000, dst_port: dport, payload_len: 12 }.emit(&mut b[20..]);
    b
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut b = vec![0u8; 60];
    Ipv6Repr { src, dst, next_header: IpProtocol::Tcp, payload_len: 20, hop_limit: 64 }.emit(&mut b);
    TcpRepr { src_port: 50000, dst_port: dport, seq: 7, ack: 0, flags: TcpFlags(flags), window: 64240 }
        .emit(&mut b[40..]);
    TcpPacket::new_checked(&mut b[40..]).unwrap().fill_checksum_v6(src, dst);
    b
}

fn main() {
    let root = Path::new("seeds");
    let repo = Path::new("..");

    let corpus = repo.join("tests/golden/keepalived/corpus");
    for e in std::fs::read_dir(&corpus).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if name.ends_with(".conf") {
            write(&root.join("conf"), &name, &std::fs::read(e.path()).unwrap());
        }
    }

    let vip4: IpAddr = "10.0.0.100".parse().unwrap();
    for (n, (version, prio)) in [(2u8, 100u8), (2, 255), (2, 0), (3, 100), (3, 0)].into_iter().enumerate() {
        let mut cfg = InstanceConfig::new("VI_1", 51, prio.max(1), vec![vip4]);
        cfg.version = version;
        if version == 2 {
            cfg.auth_pass = Some(*b"secret\0\0");
        }
        let src: IpAddr = "10.0.0.7".parse().unwrap();
        let pseudo = (version == 3).then(|| (src, "224.0.0.18".parse().unwrap()));
        let mut seed = vec![if version == 3 { 6 } else { 4 }, 7, 255];
        seed.extend(cfg.advert(prio).to_bytes(pseudo));
        write(&root.join("vrrp"), &format!("advert-{n}"), &seed);
    }

    let conn = |c: &str, proto: u8, fl: u32| SyncConn {
        protocol: proto,
        flags: fl,
        state: 1,
        caddr: c.parse().unwrap(),
        cport: 50000,
        vaddr: vip4,
        vport: 80,
        daddr: "10.1.1.244".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
        fnat_local: None,
        fnat_offsets: None,
    };
    let mut b = Builder::new(9, 1472);
    b.push(&conn("10.1.1.10", 6, flags::DROUTE | flags::NOOUTPUT));
    b.push(&conn("2001:db8::10", 17, flags::MASQ));
    write(&root.join("sync"), "two-conns", &b.finish());
    write(
        &root.join("sync"),
        "control",
        &rlvs_wire::ipvs_sync::control(rlvs_wire::ipvs_sync::Control::ResyncRequest, 9),
    );

    let (client, vip) = (Ipv4Addr::new(10, 1, 1, 10), Ipv4Addr::new(10, 0, 0, 100));
    let p = root.join("packet");
    for port in [80, 8080, 443] {
        write(&p, &format!("syn-{port}"), &tcp4(client, 40000, vip, port, TcpFlags::SYN, b""));
        write(
            &p,
            &format!("get-{port}"),
            &tcp4(client, 40000, vip, port, TcpFlags::ACK | TcpFlags::PSH, b"GET / HTTP/1.0\r\n\r\n"),
        );
    }
    write(&p, "reply-nat", &tcp4(Ipv4Addr::new(192, 168, 100, 3), 443, client, 40000, TcpFlags::ACK, b"ok"));
    write(&p, "udp-53", &udp4(client, vip, 53));
    let (c6, v6): (Ipv6Addr, Ipv6Addr) = ("2001:db8::10".parse().unwrap(), "2001:db8::100".parse().unwrap());
    write(&p, "syn6-80", &tcp6(c6, v6, 80, TcpFlags::SYN));
    // The seed's captured curl, without its Ethernet headers.
    let pcap = std::fs::read(repo.join("crates/wire/testdata/seed-curl.pcap")).unwrap();
    let (mut at, mut n) = (24, 0);
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        let frame = &pcap[at + 16..(at + 16 + len).min(pcap.len())];
        if frame.len() > 14 && frame[12..14] == [0x08, 0x00] {
            write(&p, &format!("capture-{n}"), &frame[14..]);
            n += 1;
        }
        at += 16 + len;
    }

    // The .cases files: one ipvsadm invocation per line, shell-quoted (the
    // quoting is kept simple here: a seed need not be exact).
    let golden = repo.join("tests/golden/ipvsadm");
    let mut k = 0;
    for e in std::fs::read_dir(golden).unwrap().flatten() {
        if e.path().extension().is_none_or(|x| x != "cases") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let args: Vec<&str> = line.split_whitespace().map(|a| a.trim_matches('\'')).collect();
            write(&root.join("adm"), &format!("cmd-{k}"), args.join("\0").as_bytes());
            k += 1;
        }
    }
    println!("seeds written to {}", root.display());
}
