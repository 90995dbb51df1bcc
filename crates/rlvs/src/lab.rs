//! `rlvs lab`: the seed tutorial replayed in network namespaces.
//! `rlvs lab dr` is section 2: a DR director built with ipvsadm commands,
//! two web servers, and curls from the client alternating between them.
//! `rlvs lab seed` is section 3: two directors run by rlvs as keepalived
//! with the seed's keepalived.conf files exactly as printed, and its tests.
//! `rlvs lab ecmp` is scale-out: three directors announcing the VIP to a
//! BIRD router that spreads flows over them by ECMP, one SIGKILLed, one
//! drained, one losing a virtual server's real servers.
//! `rlvs lab up` builds that topology and leaves it running; `rlvs lab
//! down` removes it. RLVS_ENGINE picks the backend of every daemon they
//! start (lab/seed-kernel.sh runs both on kernel IPVS in the lab guest).

use anyhow::{bail, Context, Result};
use rlvs_netlab::seed::{self, VIP, WEB1, WEB2};
use rlvs_netlab::Lab;
use std::time::Duration;

/// Scale-out: three directors behind a BIRD router's ECMP (see
/// rlvs_netlab::ecmp_run); prints what happens and the measured times.
fn ecmp() -> Result<()> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut lab = Lab::new()?;
    let report = rlvs_netlab::ecmp_run::run(&mut lab, &exe, &mut |l| println!("{l}"))?;
    report.verdict()?;
    println!("ecmp: passed");
    Ok(())
}

/// The seed's two files, verbatim.
const SEED_C2: &str = include_str!("../../../tests/golden/keepalived/seed-c2.conf");
const SEED_C5: &str = include_str!("../../../tests/golden/keepalived/seed-c5.conf");

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_parser = ["dr", "seed", "ecmp", "up", "down"])]
    scenario: String,
    /// How many curls the client makes (the seed shows 9).
    #[arg(long, default_value_t = 9)]
    curls: usize,
    /// seed: the keepalived to run on the directors (default: rlvs's face),
    /// e.g. /usr/sbin/keepalived in the lab guest, to compare.
    #[arg(long)]
    keepalived: Option<String>,
    /// seed: the ipvsadm that lists the directors' tables (default: rlvs's
    /// face), e.g. /usr/sbin/ipvsadm where rlvs programs kernel IPVS.
    #[arg(long)]
    ipvsadm: Option<String>,
    /// dr: after each listing, list again with this ipvsadm (the real one,
    /// where the daemon programs kernel IPVS) and fail unless both are
    /// byte-identical.
    #[arg(long)]
    compare_with: Option<String>,
}

/// The shell prompt the seed's transcript shows for host `h`.
fn prompt(h: &str, cmd: &str) {
    println!("[root@{h} ~]# {cmd}");
}

pub fn run(args: Args) -> Result<()> {
    match args.scenario.as_str() {
        "seed" => return seed_ha(&args),
        "ecmp" => return ecmp(),
        "up" => return up(),
        "down" => return down(),
        _ => {}
    }
    let exe = std::env::current_exe()?;
    let mut lab = Lab::new()?;
    let ipvsadm = lab.dir().join("ipvsadm");
    std::os::unix::fs::symlink(&exe, &ipvsadm)?;
    let ipvsadm = ipvsadm.to_string_lossy().into_owned();
    let rlvs = exe.to_string_lossy().into_owned();

    println!("== 2.1 web servers: c3 ({WEB1}) serves rs1, c4 ({WEB2}) serves rs2");
    let t = seed::build(&mut lab, None)?;
    println!("== 2.2 real servers: rs.sh start, as `rlvs realserver start --vip {VIP}`");
    for (h, ns) in [("c3", &t.web1), ("c4", &t.web2)] {
        prompt(h, &format!("rlvs realserver start --vip {VIP}"));
        print!("{}", lab.ok(ns, &[&rlvs, "realserver", "start", "--vip", VIP])?);
    }
    println!("== 2.3 director c2: vs.sh start");
    lab.ok(&t.director, &["ip", "addr", "add", &format!("{VIP}/32"), "dev", "lo", "label", "lo:1"])?;
    lab.spawn(&t.director, "rlvs-daemon", &[&rlvs, "daemon"])?;
    let up = Lab::wait_for(Duration::from_secs(10), || {
        lab.run(&t.director, &[&ipvsadm, "-Ln"]).ok().filter(|o| o.status.success())
    });
    if up.is_none() {
        bail!("rlvs daemon did not start:\n{}", lab.log("rlvs-daemon"));
    }
    let vs = [
        format!("-A -t {VIP}:80 -s rr"),
        format!("-a -t {VIP}:80 -r {WEB1} -g -w 1"),
        format!("-a -t {VIP}:80 -r {WEB2} -g -w 1"),
    ];
    for cmd in &vs {
        prompt("c2", &format!("ipvsadm {cmd}"));
        let mut argv = vec![ipvsadm.as_str()];
        argv.extend(cmd.split(' '));
        lab.ok(&t.director, &argv).with_context(|| format!("ipvsadm {cmd}"))?;
    }
    prompt("c2", "ipvsadm -Ln");
    list(&lab, &t.director, &ipvsadm, args.compare_with.as_deref())?;
    println!("== 2.4 test from c1");
    prompt("c1", &format!("route add -host {VIP} dev eth0"));
    seed::add_client_route(&lab, &t)?;
    let mut bodies = Vec::new();
    for _ in 0..args.curls {
        prompt("c1", &format!("curl {VIP}"));
        let out = lab.run(&t.client, &["curl", "-sS", "--max-time", "5", VIP])?;
        print!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        bodies.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    prompt("c2", "ipvsadm -Ln");
    list(&lab, &t.director, &ipvsadm, args.compare_with.as_deref())?;
    lab.stop("rlvs-daemon", libc::SIGTERM)?;
    if !bodies.windows(2).all(|w| w[0].starts_with("rs") && w[1].starts_with("rs") && w[0] != w[1]) {
        bail!("2.4: the curls did not alternate between rs1 and rs2: {bodies:?}");
    }
    println!("== 2.4: the curls alternate between rs1 and rs2");
    println!("== done: namespaces removed");
    Ok(())
}

/// `ipvsadm -Ln` on the director, printed; with `other`, the same listing
/// by another ipvsadm must match it byte for byte.
fn list(lab: &Lab, ns: &str, ipvsadm: &str, other: Option<&str>) -> Result<()> {
    let ours = lab.ok(ns, &[ipvsadm, "-Ln"])?;
    print!("{ours}");
    if let Some(other) = other {
        let theirs = lab.ok(ns, &[other, "-Ln"])?;
        if theirs != ours {
            bail!("{other} -Ln lists another table:\n{theirs}");
        }
        println!("({other} -Ln: byte-identical)");
    }
    Ok(())
}

fn seed_ha(args: &Args) -> Result<()> {
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut lab = Lab::new()?;
    let mut tools = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &exe)?;
    if let Some(k) = &args.keepalived {
        tools.keepalived = k.clone();
    }
    if let Some(i) = &args.ipvsadm {
        tools.ipvsadm = i.clone();
    }
    let mut print = |l: &str| println!("{l}");
    let r = rlvs_netlab::seed_ha::replay(&mut lab, &tools, SEED_C2, SEED_C5, &mut print)?;
    r.verdict()?;
    println!("== 3.3.1-3.3.3 as the seed expects");
    println!("== done: namespaces removed");
    Ok(())
}

/// Where `rlvs lab up` leaves the names of what it made.
const STATE: &str = "/run/rlvs-lab-up";

fn up() -> Result<()> {
    if std::path::Path::new(STATE).exists() {
        bail!("a lab is already up (rlvs lab down removes it)");
    }
    let exe = std::env::current_exe()?.to_string_lossy().into_owned();
    let mut lab = Lab::new()?;
    let tools = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &exe)?;
    let h = rlvs_netlab::seed_ha::build(&mut lab, &exe)?;
    rlvs_netlab::seed_ha::start_director(&mut lab, &tools.keepalived, &h.c2, "c2", SEED_C2)?;
    rlvs_netlab::seed_ha::start_director(&mut lab, &tools.keepalived, &h.c5, "c5", SEED_C5)?;
    let names = [&h.c1, &h.c2, &h.c3, &h.c4, &h.c5];
    std::fs::write(STATE, names.iter().map(|n| format!("{n}\n")).collect::<String>())?;
    println!(
        "seed topology up: client {}, directors {} (bond0) and {} (eth0), web servers {} and {}",
        h.c1, h.c2, h.c5, h.c3, h.c4
    );
    println!("try: ip netns exec {} curl {VIP}", h.c1);
    println!("     ip netns exec {} {} adm -Ln", h.c2, exe);
    println!("rlvs lab down removes it");
    // Keep everything running: the lab would clean up when dropped.
    std::mem::forget(lab);
    Ok(())
}

fn down() -> Result<()> {
    let names = std::fs::read_to_string(STATE).context("no lab is up")?;
    for ns in names.lines() {
        let pids = std::process::Command::new("ip").args(["netns", "pids", ns]).output()?;
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                // SAFETY: plain kill(2) of the lab's own processes.
                unsafe { libc::kill(p, libc::SIGTERM) };
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let sw = names.lines().next().map(|n| format!("{}-sw", n.rsplit_once('-').map_or(n, |x| x.0)));
    for ns in names.lines().map(str::to_string).chain(sw) {
        let _ = std::process::Command::new("ip").args(["netns", "del", &ns]).status();
    }
    std::fs::remove_file(STATE)?;
    println!("seed topology removed");
    Ok(())
}
