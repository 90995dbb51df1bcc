//! The seed's section 3 end to end, with its keepalived.conf files
//! verbatim: rlvs on c2 and c5 as keepalived, curls from c1, the master
//! stopped, web1 stopped and started. The times are printed, not asserted.

mod common;

use rlvs_netlab::Lab;

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../tests/golden/keepalived/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn seed_section_3_runs_on_rlvs_alone() {
    let mut lab = Lab::new().unwrap();
    let mut lines = Vec::new();
    let mut out = |l: &str| lines.push(l.to_string());
    let tools = rlvs_netlab::seed_ha::Tools::rlvs(&lab, &common::rlvs()).unwrap();
    let r = rlvs_netlab::seed_ha::replay(&mut lab, &tools, &golden("seed-c2.conf"), &golden("seed-c5.conf"), &mut out)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", lines.join("\n")));
    let transcript = lines.join("\n");
    println!("{transcript}");
    r.verdict().unwrap_or_else(|e| panic!("{e:#}\n{transcript}"));
    // keepalived's own log lines, for operators' searches.
    let c5 = lab.log("c5");
    assert!(c5.contains("(VI_1) Entering MASTER STATE"), "{c5}");
    assert!(c5.contains("HTTP_CHECK on service [10.1.1.244]:tcp:80 failed after 1 retries."), "{c5}");
    assert!(c5.contains("Removing service [10.1.1.244]:tcp:80 from VS [10.0.0.100]:tcp:80"), "{c5}");
    assert!(c5.contains("Adding service [10.1.1.244]:tcp:80 to VS [10.0.0.100]:tcp:80"), "{c5}");
    println!(
        "seed: failover {:.2} s, web1 removed {:.2} s after it stopped, back {:.2} s after it started",
        r.failover.as_secs_f64(),
        r.removal.as_secs_f64(),
        r.readd.as_secs_f64()
    );
}
