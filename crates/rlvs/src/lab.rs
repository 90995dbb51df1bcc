//! `rlvs lab`: the seed tutorial replayed in network namespaces.
//! `rlvs lab dr` is section 2: a DR director built with ipvsadm commands,
//! two web servers, and curls from the client alternating between them.

use anyhow::{bail, Context, Result};
use rlvs_netlab::seed::{self, VIP, WEB1, WEB2};
use rlvs_netlab::Lab;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_parser = ["dr"])]
    scenario: String,
    /// How many curls the client makes (the seed shows 9).
    #[arg(long, default_value_t = 9)]
    curls: usize,
}

/// The shell prompt the seed's transcript shows for host `h`.
fn prompt(h: &str, cmd: &str) {
    println!("[root@{h} ~]# {cmd}");
}

pub fn run(args: Args) -> Result<()> {
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
    print!("{}", lab.ok(&t.director, &[&ipvsadm, "-Ln"])?);
    println!("== 2.4 test from c1");
    prompt("c1", &format!("route add -host {VIP} dev eth0"));
    seed::add_client_route(&lab, &t)?;
    for _ in 0..args.curls {
        prompt("c1", &format!("curl {VIP}"));
        let out = lab.run(&t.client, &["curl", "-sS", "--max-time", "5", VIP])?;
        print!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    prompt("c2", "ipvsadm -Ln");
    print!("{}", lab.ok(&t.director, &[&ipvsadm, "-Ln"])?);
    lab.stop("rlvs-daemon", libc::SIGTERM)?;
    println!("== done: namespaces removed");
    Ok(())
}
