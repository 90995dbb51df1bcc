//! Network input never takes the director down. From the client's side and
//! from a real server's side, thousands of broken frames go to the
//! director's MAC: IPv4 and IPv6 headers cut at every length, impossible
//! header and total lengths, TCP data offsets and UDP lengths that lie,
//! fragments, every TCP flag combination, and random bytes behind a
//! plausible header aimed at the VIP, the FULLNAT local address and the
//! NAT reply path. Afterwards the daemon must still answer ipvsadm, still
//! forward NAT and FULLNAT requests, and stop cleanly (a panicking worker
//! would have ended it with status 70). Runs on whichever engine
//! RLVS_ENGINE selects; scripts/test.sh runs it on both.

mod common;

use common::*;
use rlvs_netlab::{web, Lab};

const VIP: &str = "10.0.0.100";
const DIR_MAC: &str = "02:00:00:00:0f:02";
const DIR_PRIV_MAC: &str = "02:00:00:00:0f:12";

/// Sends the broken frames out of `eth0` of the namespace it runs in, to
/// `dst_mac`, as `src`:`sport` (the client, or a real server replying).
/// The sequence is fixed (seeded), and bounded: about 3,450 frames.
const GENERATOR: &str = r#"
import random, socket, struct, sys, time
dst_mac, src, sport, dst, dport = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
rnd = random.Random(7)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('eth0', 0))
eth4 = bytes.fromhex(dst_mac.replace(':', '')) + s.getsockname()[4] + b'\x08\x00'
eth6 = eth4[:12] + b'\x86\xdd'
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
def ip4(proto, l4, ihl=5, tot=None, frag=0, opts=b''):
    h = struct.pack('!BBHHHBBH4s4s', (4 << 4) | ihl, 0, tot if tot is not None else 20 + len(opts) + len(l4),
                    1, frag, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst)) + opts
    return h[:10] + struct.pack('!H', csum(h[:20])) + h[12:] + l4
def tcp(flags, off=5, payload=b''):
    return struct.pack('!HHIIBBHHH', sport, dport, 1, 0, off << 4, flags, 64240, 0, 0) + payload
def udp(length=None, payload=b'x' * 8):
    return struct.pack('!HHHH', sport, dport, length if length is not None else 8 + len(payload), 0) + payload
sent = 0
def send(f):
    global sent
    try:
        s.send(f)
        sent += 1
    except OSError:
        pass  # too short for the driver: the kernel refused it, fine
    if sent % 64 == 0:
        time.sleep(0.002)  # a storm, not a flood: the engine's ring may drop a flood
good_syn = ip4(6, tcp(0x02))
for cut in range(len(good_syn) + 1):
    send(eth4 + good_syn[:cut])
for ihl in range(16):
    send(eth4 + ip4(6, tcp(0x02), ihl=ihl))
for tot in (0, 1, 19, 20, 21, 39, 41, 1500, 65535):
    send(eth4 + ip4(6, tcp(0x18, payload=b'GET / HTTP/1.0\r\n\r\n'), tot=tot))
    send(eth4 + ip4(17, udp(), tot=tot))
for off in range(16):
    send(eth4 + ip4(6, tcp(0x10, off=off, payload=b'y' * 12)))
for length in (0, 1, 7, 8, 9, 15, 17, 1000, 65535):
    send(eth4 + ip4(17, udp(length)))
for frag in (0x2000, 0x0001, 0x2001, 0x1fff, 0x4000 | 0x2000):
    send(eth4 + ip4(6, tcp(0x02), frag=frag))
    send(eth4 + ip4(17, udp(), frag=frag))
send(eth4 + ip4(6, tcp(0x02), ihl=15, opts=b'\x01' * 40))
send(eth4 + ip4(6, tcp(0x02), ihl=6, opts=b'\x07\x08\x04'))
for flags in range(256):
    send(eth4 + ip4(6, tcp(flags, payload=b'z' * (flags % 5))))
for proto in (0, 1, 2, 4, 41, 47, 50, 58, 132, 255):
    send(eth4 + ip4(proto, b'\x00' * rnd.randrange(0, 40)))
six = struct.pack('!IHBB16s16s', 6 << 28, 20, 6, 64, b'\xfd' + b'\0' * 14 + b'\x01', b'\xfd' + b'\0' * 14 + b'\x64') + tcp(0x02)
for cut in range(len(six) + 1):
    send(eth6 + six[:cut])
for nh in (0, 43, 44, 60, 59, 17, 6):
    send(eth6 + six[:6] + bytes([nh]) + six[7:])
send(eth6 + six[:4] + b'\xff\xff' + six[6:])
good_head = ip4(6, tcp(0x10))[:20]
for i in range(3000):
    body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200)))
    kind = i % 3
    if kind == 0:
        send(eth4 + good_head + body)
    elif kind == 1:
        send(eth4 + ip4(rnd.choice((6, 17)), body))
    else:
        send(rnd.choice((eth4, eth6)) + body)
print(sent)
"#;

#[test]
fn broken_frames_from_either_side_leave_the_director_forwarding() {
    let mut lab = Lab::new().unwrap();
    lab.segment("priv").unwrap();
    let client = lab.host("c1", "eth0", "02:00:00:00:0f:01", "10.1.1.10/24").unwrap();
    let director = lab.host("c2", "eth0", DIR_MAC, "10.1.1.243/24").unwrap();
    lab.plug(&director, "eth1", "priv", DIR_PRIV_MAC, "192.168.100.254/24").unwrap();
    let mut servers = Vec::new();
    for (i, name) in [(2u8, "rs1"), (3, "rs2")] {
        let ns = lab.bare_host(&format!("c{}", i + 1)).unwrap();
        lab.plug(&ns, "eth0", "priv", &format!("02:00:00:00:0f:2{i}"), &format!("192.168.100.{i}/24")).unwrap();
        lab.ok(&ns, &["ip", "route", "add", "10.1.1.0/24", "via", "192.168.100.254"]).unwrap();
        web::start_on(&mut lab, &ns, &format!("web-{name}"), name, &[], 8080).unwrap();
        servers.push(ns);
    }
    start_nat_director(&mut lab, &director, &client, VIP);
    adm_ok(
        &lab,
        &director,
        [
            format!("-A -t {VIP}:80 -s rr"),
            format!("-a -t {VIP}:80 -r 192.168.100.2:8080 -m"),
            format!("-a -t {VIP}:80 -r 192.168.100.3:8080 -m"),
            format!("-A -u {VIP}:80 -s rr"),
            format!("-a -u {VIP}:80 -r 192.168.100.2:8080 -m"),
            format!("-A -t {VIP}:81 -s rr"),
            format!("--add-laddr -t {VIP}:81 -z 192.168.100.254"),
            format!("-a -t {VIP}:81 -r 192.168.100.2:8080 --fullnat"),
            format!("-a -t {VIP}:81 -r 192.168.100.3:8080 --fullnat"),
        ],
    );
    let fetch = |port: u16| {
        let url = format!("http://{VIP}:{port}/");
        lab.run(&client, &["curl", "-s", "--max-time", "3", &url]).ok().filter(|o| o.status.success())
    };
    assert!(Lab::wait_for(std::time::Duration::from_secs(10), || fetch(80)).is_some(), "NAT before the storm");
    assert!(fetch(81).is_some(), "FULLNAT before the storm");

    // To the VIP from the client; as NAT replies from a real server to the
    // client; as FULLNAT replies to the local address, in its port range.
    let storms = [
        (&client, DIR_MAC, "10.1.1.10", "40000", VIP, "80"),
        (&client, DIR_MAC, "10.1.1.10", "40001", VIP, "81"),
        (&servers[0], DIR_PRIV_MAC, "192.168.100.2", "8080", "10.1.1.10", "40000"),
        (&servers[1], DIR_PRIV_MAC, "192.168.100.3", "8080", "192.168.100.254", "5000"),
    ];
    for (ns, mac, src, sport, dst, dport) in storms {
        let out = lab
            .ok(ns, &["python3", "-c", GENERATOR, mac, src, sport, dst, dport])
            .unwrap_or_else(|e| panic!("generator in {ns}: {e}"));
        let sent: u32 = out.trim().parse().unwrap_or(0);
        assert!(sent > 3000, "only {sent} frames left {ns}");
    }

    // Listings show the counters as the estimator last folded them (every
    // 2 s, as the kernel's): 2.1 s after the traffic they hold all of it.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (table, _, code) = adm(&lab, &director, "-Ln --stats");
    assert_eq!(code, 0, "the daemon stopped answering:\n{}", plain_log(&lab, "daemon"));
    // Well-formed SYNs among the storm reached the engine and were
    // forwarded: the storm went through the path under test. (Not all of
    // them: a receive ring may drop some of a burst.)
    let in_pkts: u64 = table
        .lines()
        .find(|l| l.starts_with(&format!("TCP  {VIP}:80")))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{table}"));
    assert!(in_pkts >= 20, "{table}");
    for port in [80, 81] {
        for _ in 0..4 {
            assert!(fetch(port).is_some(), "port {port} after the storm:\n{}", plain_log(&lab, "daemon"));
        }
    }
    let status = lab.stop("daemon", libc::SIGTERM).unwrap();
    assert!(status.is_some_and(|s| s.success()), "daemon ended with {status:?}:\n{}", plain_log(&lab, "daemon"));
}
