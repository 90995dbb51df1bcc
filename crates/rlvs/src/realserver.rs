//! `rlvs realserver start|stop --vip ADDR`: what the seed's rs.sh does for a
//! DR real server — the VIP as a /32 on lo (label lo:1, so `ip a` shows what
//! `ifconfig lo:1` showed), and the ARP settings that keep the real server
//! from answering ARP for it (arp_ignore=1, arp_announce=2 on all and lo).
//! `stop` undoes exactly what `start` changed: the sysctls get back the
//! values they had before, the address goes away. The values are remembered
//! in /run/rlvs under the network namespace's inode; since the kernel reuses
//! those inodes, a remembered state is trusted only while the VIP that
//! `start` put on lo is still there.

use anyhow::{bail, Context, Result};
use rlvs_dataplane::netlink::Rtnl;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(value_parser = ["start", "stop"])]
    action: String,
    /// The virtual IP the real server must accept.
    #[arg(long)]
    vip: IpAddr,
    /// Forwarding mode: dr (the default) is the only one this version handles.
    #[arg(long, default_value = "dr")]
    mode: String,
}

const SYSCTLS: [(&str, &str); 4] =
    [("all", "arp_ignore"), ("lo", "arp_ignore"), ("all", "arp_announce"), ("lo", "arp_announce")];
const WANTED: [&str; 4] = ["1", "1", "2", "2"];

fn sysctl_path(dev: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{dev}/{key}"))
}

/// Where `start` remembers the previous values: /run is shared by network
/// namespaces, so the file is named after this namespace and the VIP.
fn state_file(vip: IpAddr) -> Result<PathBuf> {
    let ino = std::fs::metadata("/proc/self/ns/net")?.ino();
    Ok(PathBuf::from(format!("/run/rlvs/realserver-{ino}-{vip}")))
}

pub fn run(args: Args) -> Result<()> {
    if args.mode != "dr" {
        bail!("--mode {} is not supported yet (only dr)", args.mode);
    }
    let lo = rlvs_dataplane::iface::index_of("lo").context("no loopback interface")?;
    let prefix = if args.vip.is_ipv4() { 32 } else { 128 };
    let mut rtnl = Rtnl::new()?;
    let state = state_file(args.vip)?;
    let vip_present = rtnl.addresses(lo)?.contains(&args.vip);
    if args.action == "start" {
        if args.vip.is_ipv4() {
            let previous: Vec<String> = SYSCTLS
                .iter()
                .map(|(d, k)| std::fs::read_to_string(sysctl_path(d, k)).map(|s| s.trim().to_string()))
                .collect::<Result<_, _>>()
                .context("reading ARP sysctls")?;
            // A second start keeps what the first one remembered.
            if !(vip_present && state.exists()) {
                std::fs::create_dir_all(state.parent().unwrap())?;
                std::fs::write(&state, previous.join(" "))?;
            }
            for ((d, k), v) in SYSCTLS.iter().zip(WANTED) {
                std::fs::write(sysctl_path(d, k), v).with_context(|| format!("setting {d}/{k}"))?;
            }
        }
        let label = args.vip.is_ipv4().then_some("lo:1");
        rtnl.addr_add(lo, args.vip, prefix, label).context("adding the VIP to lo")?;
        println!("real server ready for VIP {}: on lo, ARP silenced", args.vip);
    } else {
        if args.vip.is_ipv4() {
            let remembered = if vip_present { std::fs::read_to_string(&state).ok() } else { None };
            let restore: Vec<String> = match remembered {
                Some(s) if s.split_whitespace().count() == 4 => s.split_whitespace().map(String::from).collect(),
                // As rs.sh does when nothing (trustworthy) was remembered.
                _ => vec!["0".into(); 4],
            };
            for ((d, k), v) in SYSCTLS.iter().zip(restore) {
                std::fs::write(sysctl_path(d, k), &v).with_context(|| format!("restoring {d}/{k}"))?;
            }
            let _ = std::fs::remove_file(&state);
        }
        rtnl.addr_del(lo, args.vip, prefix).context("removing the VIP from lo")?;
        println!("real server settings for VIP {} undone", args.vip);
    }
    Ok(())
}
