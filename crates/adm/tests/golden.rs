//! Replays the invocations captured from the real ipvsadm 1.31 on Debian's
//! kernel (tests/golden/ipvsadm/*.jsonl, made by lab/capture-ipvsadm-golden.sh)
//! and demands the same stdout, stderr and exit code, byte for byte.

use rlvs_adm::{Backend, BackendError, Outcome};
use rlvs_ctl::{Request, Response};
use rlvs_lvs::{Director, Time};
use serde_json::Value;

struct InProcess(Director);

impl Backend for InProcess {
    fn call(&mut self, req: Request) -> Result<Response, BackendError> {
        Ok(rlvs_ctl::handle(&mut self.0, req, Time::ZERO, "none"))
    }
}

fn golden(name: &str) -> Vec<Value> {
    let path = format!("{}/../../tests/golden/ipvsadm/{name}.jsonl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn run(b: &mut InProcess, args: &[String]) -> Outcome {
    let mut argv = vec!["ipvsadm".to_string()];
    argv.extend(args.iter().cloned());
    rlvs_adm::run(&argv, b)
}

fn args_of(v: &Value) -> Vec<String> {
    v["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
}

fn check(b: &mut InProcess, case: &Value) -> Outcome {
    let args = args_of(case);
    let got = run(b, &args);
    assert_eq!(got.stdout, case["stdout"].as_str().unwrap(), "stdout of ipvsadm {args:?}");
    assert_eq!(got.stderr, case["stderr"].as_str().unwrap(), "stderr of ipvsadm {args:?}");
    assert_eq!(i64::from(got.code), case["rc"].as_i64().unwrap(), "exit code of ipvsadm {args:?}");
    got
}

/// Listing order without sorting is the kernel's hash-table order, which
/// depends on a namespace pointer; it is not reproducible even on the kernel.
fn hash_ordered(args: &[String]) -> bool {
    args.iter().any(|a| a == "--nosort")
}

#[test]
fn listings_match_real_ipvsadm_byte_for_byte() {
    let mut b = InProcess(Director::new());
    let mut compared = 0;
    for case in golden("listing") {
        if case.get("final").is_some() {
            check(&mut b, &case["final"]);
            continue;
        }
        if hash_ordered(&args_of(&case)) {
            continue;
        }
        check(&mut b, &case);
        compared += 1;
    }
    assert!(compared > 30);
}

#[test]
fn seed_table_listing_is_identical() {
    let cases = golden("errors");
    let setup = &cases[0];
    let mut b = InProcess(Director::new());
    for cmd in setup["setup"].as_array().unwrap() {
        let args: Vec<String> = cmd.as_str().unwrap().split(' ').map(String::from).collect();
        assert_eq!(run(&mut b, &args).code, 0);
    }
    check(&mut b, &setup["listing"]);
}

#[test]
fn malformed_invocations_give_ipvsadm_messages_and_leave_the_table_alone() {
    let cases = golden("errors");
    let mut b = InProcess(Director::new());
    for cmd in cases[0]["setup"].as_array().unwrap() {
        let args: Vec<String> = cmd.as_str().unwrap().split(' ').map(String::from).collect();
        run(&mut b, &args);
    }
    let mut refused = 0;
    for case in &cases[1..] {
        if let Some(f) = case.get("final") {
            check(&mut b, f);
            continue;
        }
        let before = run(&mut b, &["-Ln".to_string()]).stdout;
        let got = check(&mut b, case);
        if got.code != 0 {
            refused += 1;
            assert_eq!(run(&mut b, &["-Ln".to_string()]).stdout, before, "table changed by {:?}", args_of(case));
        }
    }
    assert!(refused >= 10, "only {refused} refused invocations");
}
