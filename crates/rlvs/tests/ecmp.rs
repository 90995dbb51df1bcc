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
    // The kill moved flows: some of the 30 were on d1.
    assert_eq!(report.kill.downloads, 30);
    assert!(report.kill.short_requests > 0 && report.drain.short_requests > 0);
}
