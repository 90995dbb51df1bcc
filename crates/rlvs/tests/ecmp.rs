//! Scale-out behind ECMP (issue 18): a BIRD router spreads the VIP's flows
//! over three directors, each running rlvs (DR, mh with flag-3, sloppy
//! TCP opted in) and a BIRD that exports rlvs's announce devices.
//! - SIGKILL rlvs on d1 (while d2 has seen a flap): the router withdraws
//!   d1 at once (its device died with it), 30 paced downloads complete
//!   byte-exact with no reset, and no short request fails after the
//!   router's change.
//! - `rlvs ctl announce drain` on d2: no request fails.
//! - Every real server of one virtual server down on d3: d3 withdraws the
//!   VIP, and announces it again when they return.

mod common;

use rlvs_netlab::Lab;

#[test]
fn three_directors_behind_ecmp_lose_nothing_to_a_kill_a_drain_or_a_lost_quorum() {
    let mut lab = Lab::new().unwrap();
    let mut lines = Vec::new();
    let report = rlvs_netlab::ecmp_run::run(&mut lab, &common::rlvs(), &mut |l| {
        println!("{l}");
        lines.push(l.to_string());
    });
    let report = match report {
        Ok(r) => r,
        Err(e) => panic!(
            "{e:#}\nd1:\n{}\nd2:\n{}\nrouter:\n{}",
            lab.log("rlvs-d1"),
            lab.log("rlvs-d2"),
            lab.log("bird-router")
        ),
    };
    if let Err(e) = report.verdict() {
        panic!("{e:#}\n{report:#?}\nd2:\n{}\nd3:\n{}", lab.log("rlvs-d2"), lab.log("rlvs-d3"));
    }
    assert_eq!(report.kill.downloads, 30);
    assert!(report.kill.short_requests > 0 && report.drain.short_requests > 0);
    // Every director announces again, and its metrics say so.
    let d1 = lab.ns("d1");
    let m = lab.ok(&d1, &["curl", "-sS", "--max-time", "3", "http://127.0.0.1:9650/metrics"]).unwrap();
    let vip = rlvs_netlab::ecmp::VIP;
    for want in [
        format!("rlvs_announce_vip{{vip=\"{vip}\",place=\"announced\"}} 1"),
        format!("rlvs_announce_vip{{vip=\"{vip}\",place=\"withdrawn\"}} 0"),
        "rlvs_announce_draining 0".to_string(),
        "rlvs_announce_data_plane_healthy 1".to_string(),
    ] {
        assert!(m.contains(&want), "{want} not in:\n{m}");
    }
    common::promtool_accepts(&lab, "ecmp-metrics.txt", &m);
}

/// A bad settings file stops the daemon before it touches anything, with
/// the file, line and column.
#[test]
fn a_bad_scale_out_file_is_refused_with_its_position() {
    let dir = std::env::temp_dir().join(format!("rlvs-scale-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("scale-out.conf");
    std::fs::write(&bad, "announce_device rlvs-bgp\nquorum  most\n").unwrap();
    let out = std::process::Command::new(common::rlvs())
        .args(["daemon", "--engine", "none", "--scale-out"])
        .arg(&bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:2:9: quorum is all or any, not 'most'", bad.display())), "{err}");
}
