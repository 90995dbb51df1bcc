//! Which backend the daemon runs on, decided once and said: `auto` takes
//! kernel IPVS where ip_vs is loaded or loads (lab/ runs that side in the
//! reference guest) and rlvs's own data plane here, where the kernel has
//! none; `--engine kernel` without ip_vs is one clear line; FULLNAT keeps
//! every choice on rlvs's own engine.

mod common;
use common::*;
use rlvs_netlab::Lab;
use std::time::Duration;

/// This host's kernel answers the IPVS family (loaded or loadable); the
/// tests below check the other branch here and say so.
fn kernel_has_ipvs() -> bool {
    std::path::Path::new("/sys/module/ip_vs").exists()
}

const FULLNAT_CONF: &str = "virtual_server 10.0.0.100 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    real_server 10.1.1.244 80 {
        weight 1
    }
}
";

#[test]
fn auto_without_ip_vs_runs_rlvs_own_data_plane_and_says_why() {
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("auto").unwrap();
    start_daemon(&mut lab, &ns, "d", &["--engine", "auto"]);
    let log = plain_log(&lab, "d");
    let line = log.lines().find(|l| l.contains("engine auto:")).unwrap_or_else(|| panic!("no choice logged:\n{log}"));
    if kernel_has_ipvs() {
        assert!(line.contains("engine auto: kernel IPVS, because"), "{line}");
        return;
    }
    assert!(
        line.contains("engine auto: rlvs's own data plane, because this kernel has no IPVS (no IPVS netlink family"),
        "{line}"
    );
    let running = log.lines().find(|l| l.contains("rlvs daemon running")).unwrap();
    assert!(running.contains("engine=\"afxdp\"") || running.contains("engine=\"afpacket\""), "{running}");
}

#[test]
fn engine_kernel_without_ip_vs_fails_with_one_line() {
    if kernel_has_ipvs() {
        return;
    }
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("kern").unwrap();
    let out = lab.run(&ns, &[&rlvs(), "daemon", "--engine", "kernel"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rlvs: --engine kernel: this kernel has no IP Virtual Server (no IPVS netlink family"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_keepalived_face_chooses_the_same_way() {
    if kernel_has_ipvs() {
        return;
    }
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("kaface").unwrap();
    let dir = lab.dir().to_string_lossy().into_owned();
    let conf = format!("{dir}/fullnat.conf");
    std::fs::write(&conf, FULLNAT_CONF).unwrap();
    let pids = [format!("{dir}/k.pid"), format!("{dir}/v.pid"), format!("{dir}/c.pid")];
    let face = |engine: &str| {
        let argv = [
            "env",
            &format!("RLVS_ENGINE={engine}"),
            &rlvs(),
            "keepalived",
            "-n",
            "-l",
            "-f",
            &conf,
            "-p",
            &pids[0],
            "-r",
            &pids[1],
            "-c",
            &pids[2],
        ];
        lab.run(&ns, &argv).unwrap()
    };
    // Asked for the kernel with a FULLNAT virtual server: refused before
    // anything starts, whatever the kernel has.
    let out = face("kernel");
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("--engine kernel: the virtual_server at {conf}:1")), "{err}");
    assert!(err.contains("uses FULLNAT, which kernel IPVS does not have"), "{err}");
    // auto keeps FULLNAT on rlvs's own engine and says so.
    let argv = [&rlvs(), "daemon", "--engine", "auto", "-f", &conf];
    lab.spawn(&ns, "auto", &argv).unwrap();
    let said = Lab::wait_for(Duration::from_secs(10), || {
        let log = plain_log(&lab, "auto");
        log.lines().find(|l| l.contains("engine auto:")).map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no choice logged:\n{}", lab.log("auto")));
    assert!(said.contains("engine auto: rlvs's own data plane, because the virtual_server at"), "{said}");
    assert!(said.contains("uses FULLNAT"), "{said}");
}
