//! Memory per tracked connection: one million TCP connections (a SYN each,
//! from distinct client addresses and ports) through the sans-IO director,
//! in-process, with every heap byte counted by the bench's allocator. For
//! DR (one index), and NAT and FULLNAT (a second index for replies, and a
//! local port for FULLNAT). The figure is the heap growth divided by the
//! connection count: table slots, both hash indexes with their spare
//! capacity, and anything else a connection costs. With the AF_XDP engine
//! an established connection also has entries in the XDP connection map
//! (one per direction the director forwards: one for DR and TUN, two for
//! NAT and FULLNAT): their kernel memory is read from the map's fdinfo
//! (memlock) after inserting as many, and added.

use crate::ALLOCATED;
use anyhow::{bail, Result};
use rlvs_lvs::conn::Hop;
use rlvs_lvs::{DestConfig, Director, FwdMethod, Protocol, ServiceConfig, ServiceKey, Time, Verdict};
use rlvs_wire::{IpProtocol, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

fn syn(src: Ipv4Addr, sport: u16, buf: &mut [u8; 40]) {
    let dst = Ipv4Addr::new(10, 0, 0, 100);
    let ip = Ipv4Repr { src, dst, protocol: IpProtocol::Tcp, payload_len: 20, ttl: 64, ident: 1, dont_frag: true };
    ip.emit(&mut buf[..]);
    TcpRepr { src_port: sport, dst_port: 80, seq: 1, ack: 0, flags: TcpFlags(TcpFlags::SYN), window: 64240 }
        .emit(&mut buf[20..]);
    TcpPacket::new_checked(&mut buf[20..]).unwrap().fill_checksum_v4(src, dst);
}

fn one(method: FwdMethod, n: u32) -> Result<(f64, usize)> {
    let now = Time(1000);
    let mut d = Director::new();
    let key = ServiceKey::new(Protocol::Tcp, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100)), 80);
    d.add_service(key, ServiceConfig { scheduler: "rr".into(), ..Default::default() }, now)?;
    if method == FwdMethod::FullNat {
        for i in 0..64 {
            d.add_laddr(&key, IpAddr::V4(Ipv4Addr::new(192, 168, 100, 100 + i)))?;
        }
    }
    for i in 2..4 {
        d.add_dest(&key, DestConfig::new(IpAddr::V4(Ipv4Addr::new(192, 168, 100, i)), 80, method, 1), now)?;
    }
    let hop = Hop {
        ifindex: 2,
        local: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 2]),
        peer: rlvs_wire::EthernetAddress([2, 0, 0, 0, 0, 1]),
    };
    let mut buf = [0u8; 40];
    let before = ALLOCATED.load(Ordering::SeqCst);
    for i in 0..n {
        let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i / 60000);
        syn(src, 1024 + (i % 60000) as u16, &mut buf);
        if !matches!(d.process_ipv4(&buf, Some(hop), now), Verdict::Forward(_)) {
            bail!("connection {i} was not scheduled");
        }
    }
    let after = ALLOCATED.load(Ordering::SeqCst);
    if d.conn_count() != n as usize {
        bail!("{} connections tracked, {n} expected", d.conn_count());
    }
    Ok(((after - before) as f64 / f64::from(n), d.conn_count()))
}

/// Kernel bytes of the XDP connection map holding `entries` entries, from
/// its fdinfo (memlock), per `n` connections. The object is loaded (not
/// attached) with its maps pinned in a scratch directory on bpffs.
fn map_bytes(entries: u32, n: u32) -> Result<f64> {
    use aya::maps::{HashMap, Map, MapData};
    use rlvs_dataplane::maps::{Conn4, ConnKey, ConnKey4};
    use std::os::fd::{AsFd, AsRawFd};
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/rlvs-bench-{}", std::process::id()));
    if !std::path::Path::new("/sys/fs/bpf/rlvs").exists() && std::fs::create_dir_all(&dir).is_err() {
        bail!("/sys/fs/bpf is not a bpffs (mount -t bpf bpf /sys/fs/bpf)");
    }
    std::fs::create_dir_all(&dir)?;
    let result = (|| -> Result<f64> {
        let mut bpf = aya::EbpfLoader::new().default_map_pin_directory(&dir).load(rlvs_dataplane::xdp::object())?;
        let m = bpf.take_map("conns4").ok_or_else(|| anyhow::anyhow!("no conns4 map"))?;
        let fd = match &m {
            Map::HashMap(d) => d.fd().as_fd().as_raw_fd(),
            _ => bail!("conns is not a hash map"),
        };
        let mut h: HashMap<MapData, ConnKey4, Conn4> = HashMap::try_from(m)?;
        let vip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
        for i in 0..entries {
            let src = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + i / 60000));
            let k = ConnKey::new(Protocol::Tcp, src, 1024 + (i % 60000) as u16, vip, 80).v4();
            h.insert(k, Conn4::default(), 0)?;
        }
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))?;
        let memlock: f64 = info
            .lines()
            .find_map(|l| l.strip_prefix("memlock:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no memlock in fdinfo"))?;
        Ok(memlock / f64::from(n))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub fn run(n: u32) -> Result<()> {
    println!("| method | connections | heap bytes per connection | XDP map bytes per connection | total |");
    println!("|---|---|---|---|---|");
    for (name, m, per_conn) in [
        ("DR", FwdMethod::DirectRoute, 1),
        ("TUN", FwdMethod::Tunnel, 1),
        ("NAT", FwdMethod::Masq, 2),
        ("FULLNAT", FwdMethod::FullNat, 2),
    ] {
        let (per, count) = one(m, n)?;
        let max = rlvs_dataplane::maps::MAX_CONNS;
        if n.saturating_mul(per_conn) > max {
            // Past the map's size the rest stay on the slow path: no figure.
            println!(
                "| {name} | {count} | {per:.1} | - (the map holds {max} entries, {} connections) | - |",
                max / per_conn
            );
            continue;
        }
        let map = map_bytes(n * per_conn, n)?;
        println!("| {name} | {count} | {per:.1} | {map:.1} | {:.1} |", per + map);
    }
    Ok(())
}
