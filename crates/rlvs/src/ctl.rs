//! `rlvs ctl`: runtime control of the daemon of this network namespace
//! over its control socket.

use rlvs_ctl::{Request, Response};

pub fn reload(wait: bool) -> anyhow::Result<()> {
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    if !wait {
        c.send(&Request::Reload)?;
        return Ok(());
    }
    match c.call(&Request::Reload)? {
        Response::Ok => Ok(()),
        Response::Refused(why) => anyhow::bail!("reload refused: {why}"),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

/// A real server as an operator names it: `10.1.1.244`, `10.1.1.244:80`,
/// `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_rs(s: &str) -> anyhow::Result<(std::net::IpAddr, Option<u16>)> {
    if let Ok(a) = s.parse::<std::net::IpAddr>() {
        return Ok((a, None));
    }
    match s.parse::<std::net::SocketAddr>() {
        Ok(sa) => Ok((sa.ip(), Some(sa.port()))),
        Err(_) => anyhow::bail!("'{s}' is not a real server (ADDR, ADDR:PORT or [ADDR6]:PORT)"),
    }
}

pub fn operator(rs: &str, op: rlvs_ctl::OperatorOp) -> anyhow::Result<()> {
    let (addr, port) = parse_rs(rs)?;
    call(&Request::Operator { addr, port, op })
}

/// An operator request: its lines on stdout, or why it was refused.
pub fn call(req: &rlvs_ctl::Request) -> anyhow::Result<()> {
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    match c.call(req)? {
        Response::Done(lines) => {
            for l in lines {
                println!("{l}");
            }
            Ok(())
        }
        Response::Refused(why) => anyhow::bail!("{why}"),
        other => anyhow::bail!("unexpected answer {other:?}"),
    }
}

/// `rlvs ctl status`: VRRP instances, virtual servers with their real
/// servers' weights, connections, checks and holds, the engine and the
/// sync daemons; a table for people, or JSON.
pub fn status(json: bool) -> anyhow::Result<()> {
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    let vrrp = match c.call(&Request::VrrpStatus)? {
        Response::Vrrp(v) => v,
        _ => Vec::new(),
    };
    let engine = match c.call(&Request::Info)? {
        Response::Info(i) => i.engine,
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    let services = match c.call(&Request::ListServices)? {
        Response::Services(s) => s,
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    let checkers = match c.call(&Request::Checkers)? {
        Response::Checkers(c) => c,
        _ => Vec::new(),
    };
    let daemons = match c.call(&Request::ListDaemons)? {
        Response::Daemons(d) => d,
        _ => Vec::new(),
    };
    let counters = match c.call(&Request::EngineStats)? {
        Response::EngineStats(e) => Some(e),
        _ => None,
    };
    if json {
        let v = serde_json::json!({
            "engine": engine, "vrrp": vrrp, "services": services, "real_servers": checkers, "sync_daemons": daemons,
            "connections": counters.as_ref().map(|e| e.connections),
            "connection_limit": counters.as_ref().and_then(|e| e.connection_limit),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("Engine: {engine}");
    if let Some(e) = &counters {
        let limit = e.connection_limit.map_or("unbounded".to_string(), |l| format!("of {l}"));
        println!("Connections: {} {limit}", e.connections);
    }
    if !vrrp.is_empty() {
        println!("VRRP instances:");
        for i in &vrrp {
            let s = |k: &str| i.get(k).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_default();
            println!(
                "  {:<12} {:<7} priority {} (effective {})",
                s("name"),
                s("state"),
                s("priority"),
                s("effective_priority")
            );
        }
    }
    println!("Virtual servers:");
    for svc in &services {
        let k = &svc.key;
        let name = if k.fwmark != 0 {
            format!("FWM  {}", k.fwmark)
        } else {
            format!("{:?}  {}", k.protocol, addr_port(k.addr, k.port)).to_uppercase()
        };
        println!("  {name} {}", svc.config.scheduler);
        // keepalived's names, which the checkers report under.
        let proto = format!("{:?}", k.protocol).to_lowercase();
        let vs_name = format!("[{}]:{proto}:{}", k.addr, k.port);
        for d in &svc.dests {
            let rs = addr_port(d.config.addr, d.config.port);
            let rs_name = format!("[{}]:{proto}:{}", d.config.addr, d.config.port);
            let checked = checkers.iter().find(|c| c.rs == rs_name && (k.fwmark != 0 || c.vs == vs_name));
            let check = match checked {
                Some(c) if c.up => "check up",
                Some(_) => "check DOWN",
                None => "no check",
            };
            let hold = match checked.and_then(|c| c.hold) {
                Some(rlvs_ctl::OperatorOp::Drain) => "  drained".to_string(),
                Some(rlvs_ctl::OperatorOp::Weight(w)) => format!("  weight held at {w}"),
                _ => String::new(),
            };
            println!(
                "    -> {rs:<24} weight {:<5} active {:<6} inactive {:<6} {check}{hold}",
                d.config.weight, d.activeconns, d.inactconns
            );
        }
    }
    // Real servers the checkers hold out of the table (down, not inhibited).
    for c in checkers.iter().filter(|c| !c.up) {
        println!("  {} of VS {}: check DOWN", c.rs, c.vs);
    }
    if !daemons.is_empty() {
        println!("Sync daemons:");
        for d in &daemons {
            let role = if d.state == rlvs_ctl::SYNC_MASTER { "master" } else { "backup" };
            println!("  {role:<7} {} syncid {}{}", d.mcast_ifn, d.syncid, if d.ready { "" } else { " (loading)" });
        }
    }
    Ok(())
}

fn addr_port(a: std::net::IpAddr, port: u16) -> String {
    if a.is_ipv6() {
        format!("[{a}]:{port}")
    } else {
        format!("{a}:{port}")
    }
}

/// `rlvs ctl announce [status|drain|resume] [--wait] [--json]`.
pub fn announce(op: &str, wait: bool, json: bool) -> anyhow::Result<()> {
    use rlvs_ctl::AnnounceOp;
    let op = match op {
        "drain" => AnnounceOp::Drain,
        "resume" => AnnounceOp::Resume,
        _ => AnnounceOp::Status,
    };
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    let ask = |c: &mut rlvs_ctl::Client, op| match c.call(&Request::Announce(op))? {
        Response::Announce(s) => Ok(s),
        Response::Refused(why) => anyhow::bail!("{why}"),
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    let mut s = ask(&mut c, op)?;
    if wait && op == AnnounceOp::Drain {
        // The drain time, and a few ticks of the daemon's.
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(s.drain_time_ms + 5000);
        while s.vips.iter().any(|v| v.place != "withdrawn") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            s = ask(&mut c, AnnounceOp::Status)?;
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let state = if s.draining { "draining" } else { "serving" };
    let health = if s.healthy { "data plane answers" } else { "data plane does NOT answer" };
    println!("Announce device: {} (draining VIPs on {}-gs); {state}; {health}", s.device, s.device);
    println!("Quorum: {} of a VIP's virtual servers; drain time {} ms", s.quorum, s.drain_time_ms);
    for v in &s.vips {
        println!("  {:<40} {}", v.vip, v.place);
        for (name, up) in &v.services {
            println!("    {name:<36} {}", if *up { "quorum up" } else { "quorum DOWN" });
        }
    }
    Ok(())
}

/// `rlvs ctl pick VIP:PORT CLIENT --ports FIRST-LAST [--udp]`.
pub fn pick(service: &str, client: std::net::IpAddr, ports: &str, udp: bool) -> anyhow::Result<()> {
    let sa: std::net::SocketAddr =
        service.parse().map_err(|_| anyhow::anyhow!("'{service}' is not VIP:PORT ([VIP6]:PORT)"))?;
    let range = |s: &str| s.parse::<u16>().map_err(|_| anyhow::anyhow!("'{ports}' is not PORT or FIRST-LAST"));
    let (first, last) = match ports.split_once('-') {
        Some((a, b)) => (range(a)?, range(b)?),
        None => (range(ports)?, range(ports)?),
    };
    if first > last {
        anyhow::bail!("'{ports}': the first port is above the last");
    }
    let protocol = if udp { rlvs_lvs::types::Protocol::Udp } else { rlvs_lvs::types::Protocol::Tcp };
    let key = rlvs_lvs::types::ServiceKey::new(protocol, sa.ip(), sa.port());
    call(&Request::Pick { service: key, caddr: client, cports: (first..=last).collect() })
}
