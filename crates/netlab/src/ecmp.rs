//! Scale-out topology: a client behind a router that runs BIRD 2 and
//! spreads the VIP's flows by ECMP over three directors, each running
//! rlvs and a BIRD that announces what rlvs puts on its devices; four
//! real servers share the directors' LAN (DR).
//!
//! ```text
//!  client 172.16.0.2 ── router 172.16.0.1 | 10.70.0.1 ── LAN ─┬ d1 10.70.0.11 ┐ rlvs + BIRD, AS 65001
//!                        BIRD AS 65000, ECMP over d1..d3      ├ d2 10.70.0.12 │ (VIP on rlvs-bgp)
//!                                                             ├ d3 10.70.0.13 ┘
//!                                                             └ rs1..rs4 10.70.0.21-24 (VIP on lo)
//! ```

use crate::{web, Lab};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.70.1.100";
/// An IPv6 VIP beside it: announced as a /128 over IPv6 sessions (no
/// traffic; the lab shows its announcement and withdrawal).
pub const VIP6: &str = "fd70:1::100";
pub const ROUTER_LAN6: &str = "fd70::1";
pub const DIRECTORS6: [&str; 3] = ["fd70::11", "fd70::12", "fd70::13"];
pub const SERVERS6: [&str; 4] = ["fd70::21", "fd70::22", "fd70::23", "fd70::24"];
pub const CLIENT: &str = "172.16.0.2";
pub const ROUTER_UPLINK: &str = "172.16.0.1";
pub const ROUTER_LAN: &str = "10.70.0.1";
pub const DIRECTORS: [&str; 3] = ["10.70.0.11", "10.70.0.12", "10.70.0.13"];
pub const SERVERS: [&str; 4] = ["10.70.0.21", "10.70.0.22", "10.70.0.23", "10.70.0.24"];
/// The port of the paced downloads' virtual server (80 serves pages).
pub const DOWNLOAD_PORT: u16 = 8080;
/// A virtual server like DOWNLOAD_PORT's but in the kernel's
/// order-dependent mh mode, whose picks the scenario compares.
pub const KERNEL_ORDER_PORT: u16 = 8081;
pub const ROUTER_AS: u32 = 65000;
pub const DIRECTOR_AS: u32 = 65001;
/// BGP timers of the lab: how fast a director whose machine dies (not just
/// its rlvs) leaves the ECMP group. A SIGKILLed rlvs needs none of them:
/// its device vanishes and BIRD withdraws at once.
pub const HOLD_TIME: u32 = 3;
pub const KEEPALIVE_TIME: u32 = 1;

/// The router's BIRD: one eBGP session per director, GRACEFUL_SHUTDOWN
/// honoured on import (RFC 8326: local preference 0), and the kernel
/// protocol merging equal routes into one multipath route.
pub fn router_bird(directors: &[&str]) -> String {
    let mut s = format!(
        "# The router: ECMP over the directors that announce the VIP.
router id {ROUTER_LAN};
log stderr all;
protocol device {{ }}
protocol kernel {{
    ipv4 {{ import none; export where source = RTS_BGP; }};
    # One route with a next hop per director, not the best one alone.
    merge paths on;
}}
protocol kernel {{
    ipv6 {{ import none; export where source = RTS_BGP; }};
    merge paths on;
}}
filter from_director {{
    # RFC 8326: a draining director keeps its route, at the lowest
    # preference, so flows move away before it withdraws.
    if (65535, 0) ~ bgp_community then bgp_local_pref = 0;
    # Host routes only: a director announces VIPs, nothing else.
    if net.len != 32 && net.len != 128 then reject;
    accept;
}}
template bgp director {{
    local {ROUTER_LAN} as {ROUTER_AS};
    hold time {HOLD_TIME};
    keepalive time {KEEPALIVE_TIME};
    connect retry time 1;
    # After a session error (a hold timer expired), try again within
    # seconds, not BIRD's default minute.
    error wait time 1, 10;
    ipv4 {{ import filter from_director; export none; }};
}}
template bgp director6 from director {{
    local {ROUTER_LAN6} as {ROUTER_AS};
    ipv4 {{ import none; export none; }};
    ipv6 {{ import filter from_director; export none; }};
}}
"
    );
    for (i, d) in directors.iter().enumerate() {
        s += &format!("protocol bgp d{} from director {{ neighbor {d} as {DIRECTOR_AS}; }}\n", i + 1);
        s += &format!("protocol bgp d{}v6 from director6 {{ neighbor {} as {DIRECTOR_AS}; }}\n", i + 1, DIRECTORS6[i]);
    }
    s
}

/// A director's BIRD: exports the addresses rlvs puts on its devices, the
/// draining device's with GRACEFUL_SHUTDOWN.
pub fn director_bird(me: &str, me6: &str, device: &str) -> String {
    format!(
        "# A director: announce what rlvs puts on {device} and {device}-gs.
router id {me};
log stderr all;
protocol device {{ }}
protocol direct rlvs {{
    ipv4;
    ipv6;
    interface \"{device}\", \"{device}-gs\";
}}
filter to_router {{
    if source != RTS_DEVICE then reject;
    if ifname = \"{device}-gs\" then bgp_community.add((65535, 0));
    accept;
}}
template bgp uplink_base {{
    hold time {HOLD_TIME};
    keepalive time {KEEPALIVE_TIME};
    connect retry time 1;
    error wait time 1, 10;
}}
protocol bgp uplink from uplink_base {{
    local {me} as {DIRECTOR_AS};
    neighbor {ROUTER_LAN} as {ROUTER_AS};
    ipv4 {{ import none; export filter to_router; }};
}}
protocol bgp uplink6 from uplink_base {{
    local {me6} as {DIRECTOR_AS};
    neighbor {ROUTER_LAN6} as {ROUTER_AS};
    ipv6 {{ import none; export filter to_router; }};
}}
"
    )
}

/// The directors' keepalived.conf: the same on all three. mh with the
/// client's port (flows of one client spread) and flag-3 (rlvs's
/// order-independent table: every director picks alike whatever its
/// list's history). Pages on port 80 checked by HTTP_GET, downloads on
/// 8080 by TCP_CHECK.
pub fn keepalived_conf() -> String {
    let mut s = String::from("global_defs {\n    router_id ecmp\n}\n");
    // 8081 is 8080 in the kernel's order-dependent mode (no flag-3): no
    // traffic goes there, its picks are compared with 8080's.
    for (port, check, flag3) in
        [(80u16, "HTTP_GET", true), (DOWNLOAD_PORT, "TCP_CHECK", true), (KERNEL_ORDER_PORT, "TCP_CHECK", false)]
    {
        let flag3 = if flag3 { "    flag-3\n" } else { "" };
        s += &format!(
            "virtual_server {VIP} {port} {{\n    delay_loop 1\n    lb_algo mh\n    mh-port\n{flag3}    \
             lb_kind DR\n    protocol TCP\n"
        );
        for rs in SERVERS {
            let body = if check == "HTTP_GET" {
                "        HTTP_GET {\n            url {\n                path /\n                status_code 200\n            }\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }\n".to_string()
            } else {
                format!("        TCP_CHECK {{\n            connect_port {DOWNLOAD_PORT}\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }}\n")
            };
            s += &format!("    real_server {rs} {port} {{\n        weight 1\n{body}    }}\n");
        }
        s += "}\n";
    }
    s += &format!(
        "virtual_server {VIP6} 80 {{\n    delay_loop 1\n    lb_algo mh\n    mh-port\n    flag-3\n    lb_kind DR\n    protocol TCP\n"
    );
    for rs in SERVERS6 {
        s += &format!(
            "    real_server {rs} 80 {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }}\n    }}\n"
        );
    }
    s += "}\n";
    s
}

/// rlvs's scale-out settings of the lab (a file apart from keepalived.conf).
pub fn scale_out_conf(drain_time: &str) -> String {
    format!(
        "announce_device rlvs-bgp\nquorum all\ndrain_time {drain_time}\nsloppy_tcp {VIP}:80 {VIP}:{DOWNLOAD_PORT}\n"
    )
}

pub struct Ecmp {
    pub client: String,
    pub router: String,
    pub directors: Vec<String>,
    pub servers: Vec<String>,
}

fn bird(lab: &mut Lab, ns: &str, name: &str, conf: &str) -> Result<()> {
    let dir = lab.dir().to_path_buf();
    let path = dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf)?;
    let (c, sock) = (path.to_string_lossy().into_owned(), dir.join(format!("{name}.ctl")));
    let sock = sock.to_string_lossy().into_owned();
    let pid = dir.join(format!("{name}.pid")).to_string_lossy().into_owned();
    lab.spawn(ns, name, &["bird", "-f", "-c", &c, "-s", &sock, "-P", &pid])?;
    Ok(())
}

/// Builds the topology, starts the real servers (pages on 80, `size`
/// bytes paced at `rate` B/s on 8080) and every BIRD. The directors' rlvs
/// are started by [`start_director`].
pub fn build(lab: &mut Lab, rlvs: &str, size: usize, rate: usize) -> Result<Ecmp> {
    let router = lab.host("rt", "eth1", "02:00:00:00:70:01", &format!("{ROUTER_LAN}/24"))?;
    let client = lab.bare_host("cl")?;
    lab.link(
        (&client, "eth0", "02:00:00:00:16:02", &format!("{CLIENT}/24")),
        (&router, "eth0", "02:00:00:00:16:01", &format!("{ROUTER_UPLINK}/24")),
    )?;
    lab.ok(&client, &["ip", "route", "add", "default", "via", ROUTER_UPLINK])?;
    for kv in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        // L4 hashing: flows of one client spread over the directors.
        "net.ipv4.fib_multipath_hash_policy=1",
        "net.ipv6.fib_multipath_hash_policy=1",
        // Loose: a real server's reply (from the VIP) arrives on the LAN,
        // where the VIP's route points; loose holds even when every
        // director has withdrawn.
        "net.ipv4.conf.all.rp_filter=2",
        "net.ipv4.conf.default.rp_filter=2",
        "net.ipv4.conf.eth1.rp_filter=2",
        "net.ipv4.conf.eth0.rp_filter=2",
    ] {
        lab.ok(&router, &["sysctl", "-qw", kv])?;
    }
    lab.ok(&router, &["ip", "-6", "addr", "add", &format!("{ROUTER_LAN6}/64"), "dev", "eth1", "nodad"])?;
    let mut directors = Vec::new();
    for (i, a) in DIRECTORS.iter().enumerate() {
        let ns = lab.host(&format!("d{}", i + 1), "eth0", &format!("02:00:00:00:70:1{}", i + 1), &format!("{a}/24"))?;
        lab.ok(&ns, &["ip", "-6", "addr", "add", &format!("{}/64", DIRECTORS6[i]), "dev", "eth0", "nodad"])?;
        directors.push(ns);
    }
    let mut servers = Vec::new();
    for (i, a) in SERVERS.iter().enumerate() {
        let n = i + 1;
        let ns = lab.host(&format!("rs{n}"), "eth0", &format!("02:00:00:00:70:2{n}"), &format!("{a}/24"))?;
        lab.ok(&ns, &["ip", "route", "add", "default", "via", ROUTER_LAN])?;
        lab.ok(&ns, &["ip", "-6", "addr", "add", &format!("{}/64", SERVERS6[i]), "dev", "eth0", "nodad"])?;
        lab.ok(&ns, &[rlvs, "realserver", "start", "--vip", VIP])?;
        web::start(lab, &ns, &format!("web{n}"), &format!("rs{n}"), &[])?;
        web::paced(lab, &ns, &format!("paced{n}"), size, rate, DOWNLOAD_PORT)?;
        servers.push(ns);
    }
    bird(lab, &router.clone(), "bird-router", &router_bird(&DIRECTORS))?;
    for (i, ns) in directors.clone().iter().enumerate() {
        bird(lab, ns, &format!("bird-d{}", i + 1), &director_bird(DIRECTORS[i], DIRECTORS6[i], "rlvs-bgp"))?;
    }
    Ok(Ecmp { client, router, directors, servers })
}

/// Starts rlvs on director `i` (0-based) under the name `rlvs-d<i+1>`,
/// with the lab's keepalived.conf and scale-out settings.
pub fn start_director(lab: &mut Lab, t: &Ecmp, i: usize, rlvs: &str, drain_time: &str) -> Result<()> {
    let dir = lab.dir().to_path_buf();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, keepalived_conf())?;
    let so = dir.join(format!("scale-out-{drain_time}.conf"));
    std::fs::write(&so, scale_out_conf(drain_time))?;
    let (conf, so) = (conf.to_string_lossy().into_owned(), so.to_string_lossy().into_owned());
    let engine = std::env::var("RLVS_ENGINE").unwrap_or_else(|_| "auto".into());
    let name = format!("rlvs-d{}", i + 1);
    lab.spawn(
        &t.directors[i],
        &name,
        &[
            rlvs,
            "daemon",
            "-f",
            &conf,
            "--scale-out",
            &so,
            "-i",
            "eth0",
            "--engine",
            &engine,
            "--log",
            "debug",
            "--metrics",
            "127.0.0.1:9650",
        ],
    )
    .with_context(|| format!("starting {name}"))?;
    Ok(())
}

/// The router's next hops for the VIP, sorted (empty: no route).
pub fn next_hops(lab: &Lab, t: &Ecmp) -> Vec<String> {
    let out = lab.run(&t.router, &["ip", "-4", "route", "show", VIP]).map(|o| o.stdout).unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    let mut hops: Vec<String> = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect();
    hops.sort();
    hops
}

/// How many next hops the router has for the IPv6 VIP (BIRD may install
/// the directors' link-local addresses, so they are counted, not named).
pub fn next_hops6(lab: &Lab, t: &Ecmp) -> usize {
    let out = lab.run(&t.router, &["ip", "-6", "route", "show", VIP6]).map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out).split_whitespace().filter(|w| *w == "via").count()
}

/// Polls the router's table every 5 ms until `seen` returns what is
/// wanted; returns how long it took.
fn wait_route<T: PartialEq + std::fmt::Debug>(
    what: &str,
    want: T,
    timeout: Duration,
    mut seen: impl FnMut() -> T,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let now = seen();
        if now == want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("the router's {what} are {now:?}, not {want:?}, after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the router has `n` next hops for the IPv6 VIP.
pub fn wait_next_hops6(lab: &Lab, t: &Ecmp, n: usize, timeout: Duration) -> Result<Duration> {
    wait_route(&format!("next hops for {VIP6} (count)"), n, timeout, || next_hops6(lab, t))
}

/// Waits until the router's next hops for the VIP are exactly `want`;
/// returns how long it took.
pub fn wait_next_hops(lab: &Lab, t: &Ecmp, want: &[&str], timeout: Duration) -> Result<Duration> {
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    wait_route(&format!("next hops for {VIP}"), want, timeout, || next_hops(lab, t))
}
