//! keepalived's load-time verdicts, file by file: rlvs's `keepalived -t`
//! against real keepalived 2.2.7's (captured in the lab by
//! lab/keepalived-corpus.sh) on every file of
//! tests/golden/keepalived/corpus, in the same namespace layout. The exit
//! code must be the same, and so must the set of problems: each of
//! keepalived's messages, by line, must have its rlvs counterpart (rlvs
//! words a few more clearly and adds hints; `keepalived_form` says how
//! its messages read in keepalived's words).

mod common;

use rlvs_netlab::Lab;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/keepalived/corpus").canonicalize().unwrap()
}

type Problems = BTreeSet<(u32, String)>;

/// keepalived's -t output: `(FILE: Line N) MSG` or `(Line N) MSG`, other
/// lines as they are (line 0), and `exit N` last.
fn keepalived_verdict(text: &str) -> (i32, Problems) {
    let mut code = -1;
    let mut set = Problems::new();
    for l in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if let Some(c) = l.strip_prefix("exit ") {
            code = c.parse().unwrap();
            continue;
        }
        let parsed = l.strip_prefix('(').and_then(|rest| {
            let (inside, msg) = rest.split_once(") ")?;
            let n = inside.rsplit_once("Line ").map(|(_, n)| n).unwrap_or(inside);
            Some((n.parse::<u32>().ok()?, msg.to_string()))
        });
        let (n, msg) = parsed.unwrap_or((0, l.to_string()));
        set.insert((n, short(&msg).to_string()));
    }
    (code, set)
}

/// rlvs's -t output in keepalived's words: `FILE:LINE:COL: LEVEL: MSG;
/// HINT` lines (notes are rlvs's own and have no counterpart), other lines
/// as they are.
fn rlvs_verdict(text: &str) -> Problems {
    let mut set = Problems::new();
    for l in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        let (line, rest) = match l.split_once(": ") {
            Some((pos, rest)) if pos.matches(':').count() == 2 => {
                let n = pos.split(':').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                (n, rest)
            }
            _ => (0, l),
        };
        let msg = match rest.split_once(": ") {
            // rlvs's own notes (what it reads and does not act on) have
            // no keepalived counterpart; the others word keepalived's logs.
            Some(("note", m)) if m.contains("has no effect in rlvs") => continue,
            Some(("note" | "warning" | "error", m)) => m,
            _ => rest,
        };
        let msg = short(msg);
        for k in keepalived_form(msg) {
            set.insert((line, k));
        }
    }
    set
}

/// A message up to its first "; ": where rlvs's hint starts (cut on both
/// sides, as a few of keepalived's messages have one too).
fn short(msg: &str) -> &str {
    msg.split_once("; ").map_or(msg, |(m, _)| m)
}

/// The keepalived messages an rlvs message stands for.
fn keepalived_form(msg: &str) -> Vec<String> {
    // keepalived names a plain virtual server's duplicate scripts after
    // its group, which it does not have: "(null)". rlvs names the server.
    for kw in ["notify_up", "notify_down", "quorum_up", "quorum_down"] {
        let tail = format!(") {kw} script already specified - ignoring ");
        if let (true, Some((_, rest))) = (msg.starts_with("([") || msg.starts_with("(FWM "), msg.split_once(&tail)) {
            return vec![format!("((null){tail}{rest}")];
        }
    }
    match msg {
        // keepalived reports the stray brace twice.
        "Extra '}' found" => vec![msg.to_string(), "Unknown keyword '}'".to_string()],
        _ => vec![msg.to_string()],
    }
}

/// Files where rlvs must not agree, and why.
const DIVERGES: &[(&str, &str)] = &[
    ("b18-http-no-url", "keepalived 2.2.7 crashes (SIGSEGV) under -t on an HTTP_GET without url; rlvs reports it and exits 5"),
    ("b34-fwmark-zero", "keepalived 2.2.7 takes fwmark 0 for an address service and prints uninitialised memory as its address; rlvs refuses the mark"),
    ("b58-url-no-path", "keepalived 2.2.7 crashes (SIGSEGV) under -t on a url block without path; rlvs reports it and exits 5"),
    ("b37-unbalanced-quote", "keepalived 2.2.7 crashes (SIGSEGV) under -t on an unterminated quote; rlvs reports it and exits 5"),
];

#[test]
fn keepalived_t_verdicts_agree_with_keepalived_2_2_7() {
    let mut lab = Lab::new().unwrap();
    let ns = lab.bare_host("kc").unwrap();
    for (a, b) in [("eth0", "p0"), ("eth1", "p1"), ("bond0", "p2"), ("nomc0", "p3")] {
        lab.ok(&ns, &["ip", "link", "add", a, "type", "veth", "peer", "name", b]).unwrap();
    }
    // A link without multicast (as some tunnels are): VRRP there must be unicast.
    lab.ok(&ns, &["ip", "link", "set", "nomc0", "multicast", "off"]).unwrap();
    for i in ["lo", "eth0", "p0", "eth1", "p1", "bond0", "p2", "nomc0", "p3"] {
        lab.ok(&ns, &["ip", "link", "set", i, "up"]).unwrap();
    }
    for (a, dev) in
        [("10.1.1.243/24", "eth0"), ("192.168.10.2/24", "eth1"), ("172.16.0.2/24", "bond0"), ("10.9.9.2/24", "nomc0")]
    {
        lab.ok(&ns, &["ip", "addr", "add", a, "dev", dev]).unwrap();
    }
    lab.ok(&ns, &["ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad"]).unwrap();
    let keepalived = lab.dir().join("keepalived");
    std::os::unix::fs::symlink(common::rlvs(), &keepalived).unwrap();
    let dir = corpus();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".conf").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 60, "the corpus has {} files", names.len());
    let mut report = BTreeMap::new();
    for name in &names {
        let golden = std::fs::read_to_string(dir.join(format!("{name}.keepalived-t.txt")))
            .unwrap_or_else(|_| panic!("no lab capture for {name}: run lab/keepalived-corpus.sh"));
        let (ka_code, ka) = keepalived_verdict(&golden);
        let file = dir.join(format!("{name}.conf"));
        let out = lab
            .command(&ns, &[keepalived.to_str().unwrap(), "-t", "-i", "node1", "-f", file.to_str().unwrap()])
            .current_dir(&dir)
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let code = out.status.code().unwrap_or(-1);
        // keepalived gives some problems no line (found once the whole
        // file is read); rlvs's line for them is extra precision.
        let lineless: BTreeSet<&String> = ka.iter().filter(|(n, _)| *n == 0).map(|(_, m)| m).collect();
        let ours: Problems =
            rlvs_verdict(&text).into_iter().map(|(n, m)| if lineless.contains(&m) { (0, m) } else { (n, m) }).collect();
        if let Some((_, why)) = DIVERGES.iter().find(|(n, _)| n == name) {
            assert_eq!(code, 5, "{name} ({why}):\n{text}");
            assert!(!ours.is_empty(), "{name} ({why}): no message\n{text}");
            continue;
        }
        let missing: Vec<_> = ka.difference(&ours).collect();
        let extra: Vec<_> = ours.difference(&ka).collect();
        if code != ka_code || !missing.is_empty() || !extra.is_empty() {
            report.insert(
                name.clone(),
                format!(
                    "exit keepalived {ka_code} rlvs {code}\n  keepalived only: {missing:?}\n  rlvs only: {extra:?}"
                ),
            );
        }
    }
    let lines: Vec<String> = report.iter().map(|(n, r)| format!("{n}: {r}")).collect();
    println!("{} of {} files agree", names.len() - report.len(), names.len());
    assert!(report.is_empty(), "{} files disagree:\n{}", report.len(), lines.join("\n"));
}
