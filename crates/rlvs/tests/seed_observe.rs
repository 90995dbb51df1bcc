//! Section 3 of the seed, watched the way operators watch keepalived:
//! rlvs plays keepalived on c2 and c5 with the seed's files verbatim and
//! `RLVS_METRICS` set. Every scrape passes `promtool check metrics`; the
//! scrapes show web1 go down and come back, and VRRP move from c2 to c5
//! (`rlvs ctl maintenance`) and back. `rlvs ctl drain` of rs1 stops new
//! connections to it while a download through rs1, kept on the wire by
//! the client's small receive window, completes byte for byte; enable
//! brings rs1 back. keepalived's dump signals write its files, compared
//! field by field with the real keepalived 2.2.7's (captured in the lab
//! by lab/keepalived-signals.sh), times and interface identities aside,
//! and parsed as the common keepalived exporter parses them.

mod common;

use rlvs_netlab::{seed_ha, Lab};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const VIP: &str = "10.0.0.100";
const BIG: usize = 1536 * 1024;

fn golden(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../tests/golden/keepalived/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

struct Director {
    ns: String,
    tmp: PathBuf,
    pid_file: PathBuf,
}

/// rlvs as keepalived in `ns` with `conf`, metrics on and its own TMPDIR.
fn start(lab: &mut Lab, keepalived: &str, ns: &str, tag: &str, conf: &str) -> Director {
    let d = lab.dir().to_path_buf();
    let file = d.join(format!("{tag}.conf"));
    std::fs::write(&file, conf).unwrap();
    let tmp = d.join(format!("tmp-{tag}"));
    std::fs::create_dir_all(&tmp).unwrap();
    let pid_file = d.join(format!("{tag}.pid"));
    let s = |p: &Path| p.to_string_lossy().into_owned();
    let (tmp_env, f, p) = (format!("TMPDIR={}", s(&tmp)), s(&file), s(&pid_file));
    let (r, c) = (s(&d.join(format!("{tag}-vrrp.pid"))), s(&d.join(format!("{tag}-check.pid"))));
    let argv = [
        "env",
        "RLVS_METRICS=127.0.0.1:9650",
        &tmp_env,
        keepalived,
        "-n",
        "-l",
        "-f",
        &f,
        "-p",
        &p,
        "-r",
        &r,
        "-c",
        &c,
    ];
    lab.spawn(ns, tag, &argv).unwrap();
    Director { ns: ns.to_string(), tmp, pid_file }
}

/// One scrape, checked by promtool.
fn scrape(lab: &Lab, ns: &str) -> String {
    try_scrape(lab, ns)
        .unwrap_or_else(|| panic!("no metrics from {ns}:\n{}", lab.log(if ns.ends_with("c2") { "c2" } else { "c5" })))
}

/// As [`scrape`]; None while the daemon does not listen yet.
fn try_scrape(lab: &Lab, ns: &str) -> Option<String> {
    let text = lab.ok(ns, &["curl", "-sS", "--max-time", "3", "http://127.0.0.1:9650/metrics"]).ok()?;
    common::promtool_accepts(lab, &format!("scrape-{ns}.txt"), &text);
    Some(text)
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')).and_then(|v| v.parse().ok()))
}

fn wait_metric(lab: &Lab, ns: &str, series: &str, want: f64) -> String {
    let got = Lab::wait_for(Duration::from_secs(15), || {
        let m = try_scrape(lab, ns)?;
        (sample(&m, series) == Some(want)).then_some(m)
    });
    got.unwrap_or_else(|| panic!("{series} never {want} in {ns}:\n{}", scrape(lab, ns)))
}

const RS1: &str = r#"vs="[10.0.0.100]:tcp:80",rs="[10.1.1.244]:tcp:80""#;
const RS2: &str = r#"vs="[10.0.0.100]:tcp:80",rs="[10.1.1.245]:tcp:80""#;

fn state(st: &str) -> String {
    format!("rlvs_vrrp_state{{instance=\"VI_1\",state=\"{st}\"}}")
}

/// Sends keepalived's dump signals (numbers from `--signum`, as exporters
/// ask) and waits for the files.
fn dump(lab: &Lab, keepalived: &str, d: &Director, funcs: &[&str], files: &[&str]) -> BTreeMap<String, String> {
    for f in files {
        let _ = std::fs::remove_file(d.tmp.join(f));
    }
    let pid: i32 = std::fs::read_to_string(&d.pid_file).unwrap().trim().parse().unwrap();
    for f in funcs {
        let n: i32 = lab.ok(&d.ns, &[keepalived, &format!("--signum={f}")]).unwrap().trim().parse().unwrap();
        // SAFETY: kill has no memory preconditions.
        assert_eq!(unsafe { libc::kill(pid, n) }, 0);
    }
    let got = Lab::wait_for(Duration::from_secs(5), || {
        let all: Option<BTreeMap<String, String>> =
            files.iter().map(|f| std::fs::read_to_string(d.tmp.join(f)).ok().map(|t| (f.to_string(), t))).collect();
        all
    });
    got.unwrap_or_else(|| panic!("{files:?} not written in {}", d.tmp.display()))
}

/// A line with what depends on the moment or the machine masked: times,
/// interface indexes, addresses, sockets, the host name.
fn masked(line: &str) -> String {
    for key in ["Last transition = ", "Read timeout = ", "index = ", "IPv6 address = ", "MAC = ", "Smtp HELO name = "] {
        if let Some(i) = line.find(key) {
            return format!("{}{key}*", &line[..i]);
        }
    }
    if line.trim_start().starts_with("fd_in ") {
        return "fd_in *".into();
    }
    // A tracking script's state is whether it runs at that instant.
    if line == "   State = running" {
        return "   State = idle".into();
    }
    line.to_string()
}

/// keepalived's file and rlvs's, line by line once masked.
fn same_fields(what: &str, real: &str, ours: &str) {
    let r: Vec<String> = real.lines().map(masked).collect();
    let o: Vec<String> = ours.lines().map(masked).collect();
    let diff: Vec<String> = (0..r.len().max(o.len()))
        .filter(|&i| r.get(i) != o.get(i))
        .map(|i| format!("line {}: keepalived {:?} / rlvs {:?}", i + 1, r.get(i), o.get(i)))
        .take(10)
        .collect();
    assert!(diff.is_empty(), "{what} differs from keepalived 2.2.7's:\n{}\n--- rlvs:\n{ours}", diff.join("\n"));
}

/// The common keepalived exporter's reading of keepalived.data
/// (mehdy/keepalived-exporter, ParseVRRPData): per instance the keys it
/// uses, and the VIPs as it splits them (address, device).
fn exporter_data(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut instance = String::new();
    let mut key = String::new();
    for l in text.lines() {
        if l.starts_with(" VRRP Instance") && l.contains('=') {
            instance = l.split('=').nth(1).unwrap().trim().to_string();
            out.entry(instance.clone()).or_default();
        } else if l.starts_with("   ") && !instance.is_empty() {
            let val = if l.starts_with("     ") {
                l.trim().to_string()
            } else {
                let sep = if l.contains('=') {
                    '='
                } else if l.contains(':') {
                    ':'
                } else {
                    continue;
                };
                let mut kv = l.trim().splitn(2, sep);
                key = kv.next().unwrap().trim().to_string();
                if key == "Virtual IP" {
                    continue;
                }
                kv.next().unwrap_or("").trim().to_string()
            };
            let e = out.get_mut(&instance).unwrap();
            if key.starts_with("Virtual IP (") && !val.is_empty() {
                let w: Vec<&str> = val.split(' ').collect();
                e.insert(format!("vip {}", w[0]), w.get(2).unwrap_or(&"").to_string());
            }
            if ["State", "Wantstate", "Interface", "Gratuitous ARP delay", "Virtual Router ID"].contains(&key.as_str())
            {
                e.insert(key.clone(), val);
            }
        } else {
            instance.clear();
        }
    }
    out
}

/// ParseStats: every counter of keepalived.stats is an integer under its
/// instance and section.
fn exporter_stats(text: &str) -> BTreeMap<String, i64> {
    let (mut out, mut instance, mut section) = (BTreeMap::new(), String::new(), String::new());
    for l in text.lines() {
        if l.starts_with("VRRP Instance") && l.contains(':') {
            instance = l.split(':').nth(1).unwrap().trim().to_string();
        } else if l.starts_with("  ") && l.ends_with(':') {
            section = l.trim().trim_end_matches(':').to_string();
        } else if l.starts_with("  ") {
            let (k, v) = l.trim().split_once(':').expect("key: value");
            let v: i64 = v.trim().parse().unwrap_or_else(|_| panic!("the exporter refuses {l:?}"));
            let sec = if l.starts_with("    ") { section.clone() } else { String::new() };
            out.insert(format!("{instance}/{sec}/{}", k.trim()), v);
        }
    }
    out
}

fn check_dumps(lab: &Lab, keepalived: &str, d: &Director, tag: &str, phase: &str) {
    let files = dump(
        lab,
        keepalived,
        d,
        &["DATA", "STATS", "JSON"],
        &["keepalived.data", "keepalived_check.data", "keepalived.stats", "keepalived.json"],
    );
    let real = |f: &str| golden(&format!("signals/{tag}-{phase}.{f}"));
    same_fields(&format!("{tag} {phase} keepalived.data"), &real("keepalived.data"), &files["keepalived.data"]);
    same_fields(
        &format!("{tag} {phase} keepalived_check.data"),
        &real("keepalived_check.data"),
        &files["keepalived_check.data"],
    );
    assert_eq!(exporter_data(&real("keepalived.data")), exporter_data(&files["keepalived.data"]));
    // Counters move with time; the keys, and what a steady pair holds
    // still (transitions, errors), must agree.
    let (rs, os) = (exporter_stats(&real("keepalived.stats")), exporter_stats(&files["keepalived.stats"]));
    assert_eq!(rs.keys().collect::<Vec<_>>(), os.keys().collect::<Vec<_>>(), "{}", files["keepalived.stats"]);
    for (k, v) in &rs {
        if !k.contains("Advertisements/") {
            assert_eq!(Some(v), os.get(k), "{k} in {}", files["keepalived.stats"]);
        }
    }
    let mut rj: serde_json::Value = serde_json::from_str(&real("keepalived.json")).unwrap();
    let mut oj: serde_json::Value = serde_json::from_str(&files["keepalived.json"]).unwrap();
    for j in [&mut rj, &mut oj] {
        for i in j.as_array_mut().unwrap() {
            i["data"]["last_transition"] = 0.into();
            i["stats"]["advert_rcvd"] = 0.into();
            i["stats"]["advert_sent"] = 0.into();
        }
    }
    assert_eq!(rj, oj, "keepalived.json:\n{}", files["keepalived.json"]);
}

/// A download through the VIP whose client reads with a 4 KiB receive
/// buffer at 256 KiB/s: the transfer stays on the wire to its last byte.
fn slow_download(lab: &Lab, ns: &str) -> std::process::Child {
    let script = format!(
        r#"import socket, time, hashlib
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.settimeout(20)
s.connect(("{VIP}", 80))
s.sendall(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
data, t0 = b"", time.monotonic()
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
    ahead = len(data) / 262144 - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
body = data.split(b"\r\n\r\n", 1)[1]
print(len(body), hashlib.sha256(body).hexdigest())
"#
    );
    lab.command(ns, &["python3", "-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn curl(lab: &Lab, ns: &str) -> String {
    let o = lab.run(ns, &["curl", "-s", "--max-time", "1", &format!("http://{VIP}/")]).unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn ctl(lab: &Lab, ns: &str, args: &[&str]) -> String {
    let rlvs = common::rlvs();
    let mut argv = vec![rlvs.as_str(), "ctl"];
    argv.extend(args);
    let o = lab.run(ns, &argv).unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "rlvs ctl {args:?}: {text}");
    text
}

#[test]
fn seed_section_3_scraped_drained_dumped_and_moved() {
    let mut lab = Lab::new().unwrap();
    let tools = seed_ha::Tools::rlvs(&lab, &common::rlvs()).unwrap();
    let h = seed_ha::build(&mut lab, &tools.rlvs).unwrap();
    let big: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    for web in ["web1", "web2"] {
        std::fs::write(lab.dir().join(format!("www-{web}/big")), &big).unwrap();
    }
    let c2 = start(&mut lab, &tools.keepalived, &h.c2, "c2", &golden("seed-c2.conf"));
    let c5 = start(&mut lab, &tools.keepalived, &h.c5, "c5", &golden("seed-c5.conf"));
    wait_metric(&lab, &h.c2, &state("MASTER"), 1.0);
    wait_metric(&lab, &h.c5, &state("BACKUP"), 1.0);
    let m = wait_metric(&lab, &h.c2, &format!("rlvs_checker_last_result{{{RS1},checker=\"HTTP_GET\"}}"), 1.0);
    for series in [format!("rlvs_real_server_up{{{RS1}}}"), format!("rlvs_real_server_up{{{RS2}}}")] {
        assert_eq!(sample(&m, &series), Some(1.0), "{series}:\n{m}");
    }
    assert!(Lab::wait_for(Duration::from_secs(10), || curl(&lab, &h.c1).starts_with("rs").then_some(())).is_some());

    // keepalived's dumps, both directors, both servers up.
    check_dumps(&lab, &tools.keepalived, &c2, "c2", "up");
    check_dumps(&lab, &tools.keepalived, &c5, "c5", "up");
    // STATS_CLEAR: the file as it stood, then the counters from zero (the
    // master has sent an advert or so since, as keepalived's had).
    let before = dump(&lab, &tools.keepalived, &c2, &["STATS_CLEAR"], &["keepalived.stats"]);
    assert_eq!(exporter_stats(&before["keepalived.stats"])["VI_1//Became master"], 1);
    std::thread::sleep(Duration::from_millis(200));
    let after = dump(&lab, &tools.keepalived, &c2, &["STATS"], &["keepalived.stats"]);
    let after = exporter_stats(&after["keepalived.stats"]);
    let real = exporter_stats(&golden("signals/c2-after-clear.keepalived.stats"));
    assert_eq!(after.keys().collect::<Vec<_>>(), real.keys().collect::<Vec<_>>());
    assert_eq!(after["VI_1//Became master"], 0);
    assert!(after["VI_1/Advertisements/Sent"] <= 2, "{after:?}");

    // 3.3.3: web1 down, then back.
    lab.stop("web1", libc::SIGTERM).unwrap();
    let m = wait_metric(&lab, &h.c2, &format!("rlvs_real_server_up{{{RS1}}}"), 0.0);
    assert_eq!(sample(&m, &format!("rlvs_checker_last_result{{{RS1},checker=\"HTTP_GET\"}}")), Some(0.0), "{m}");
    assert!(
        m.lines().any(|l| l.starts_with(&format!(
            "rlvs_checker_failures_total{{{RS1},checker=\"HTTP_GET\",reason=\"connection_refused\"}}"
        ))),
        "{m}"
    );
    wait_metric(&lab, &h.c5, &format!("rlvs_real_server_up{{{RS1}}}"), 0.0);
    let files = dump(&lab, &tools.keepalived, &c2, &["DATA"], &["keepalived_check.data"]);
    same_fields(
        "c2 web1down keepalived_check.data",
        &golden("signals/c2-web1down.keepalived_check.data"),
        &files["keepalived_check.data"],
    );
    rlvs_netlab::web::start(&mut lab, &h.c3, "web1", "rs1", &[]).unwrap();
    wait_metric(&lab, &h.c2, &format!("rlvs_real_server_up{{{RS1}}}"), 1.0);
    wait_metric(&lab, &h.c5, &format!("rlvs_real_server_up{{{RS1}}}"), 1.0);

    // Drain rs1 while a download runs through it.
    let downloads: Vec<_> = (0..2).map(|_| slow_download(&lab, &h.c1)).collect();
    let on_rs1 = Lab::wait_for(Duration::from_secs(5), || {
        let m = scrape(&lab, &h.c2);
        (sample(&m, &format!("rlvs_real_server_active_connections{{{RS1}}}")) == Some(1.0)).then_some(())
    });
    assert!(on_rs1.is_some(), "no download on rs1:\n{}", scrape(&lab, &h.c2));
    let said = ctl(&lab, &h.c2, &["drain", "10.1.1.244"]);
    assert!(said.contains("drained"), "{said}");
    let m = scrape(&lab, &h.c2);
    assert_eq!(sample(&m, &format!("rlvs_real_server_weight{{{RS1}}}")), Some(0.0), "{m}");
    assert_eq!(sample(&m, &format!("rlvs_real_server_operator_hold{{{RS1}}}")), Some(1.0), "{m}");
    for _ in 0..6 {
        assert_eq!(curl(&lab, &h.c1), "rs2", "a drained rs1 takes no new connection");
    }
    for d in downloads {
        let o = d.wait_with_output().unwrap();
        let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let want = format!("{BIG} {}", sha256_hex(&big));
        assert_eq!(got, want, "download: {}", String::from_utf8_lossy(&o.stderr));
    }
    ctl(&lab, &h.c2, &["enable", "10.1.1.244"]);
    let seen: Vec<String> = (0..4).map(|_| curl(&lab, &h.c1)).collect();
    assert!(seen.contains(&"rs1".to_string()) && seen.contains(&"rs2".to_string()), "{seen:?}");

    // VRRP from c2 to c5 and back, by maintenance.
    ctl(&lab, &h.c2, &["maintenance", "VI_1", "on"]);
    wait_metric(&lab, &h.c5, &state("MASTER"), 1.0);
    wait_metric(&lab, &h.c2, &state("FAULT"), 1.0);
    assert!(Lab::wait_for(Duration::from_secs(5), || curl(&lab, &h.c1).starts_with("rs").then_some(())).is_some());
    let m = scrape(&lab, &h.c5);
    assert!(sample(&m, "rlvs_vrrp_become_master_total{instance=\"VI_1\"}").is_some_and(|v| v >= 1.0), "{m}");
    ctl(&lab, &h.c2, &["maintenance", "VI_1", "off"]);
    wait_metric(&lab, &h.c2, &state("MASTER"), 1.0);
    wait_metric(&lab, &h.c5, &state("BACKUP"), 1.0);
    assert!(Lab::wait_for(Duration::from_secs(5), || curl(&lab, &h.c1).starts_with("rs").then_some(())).is_some());
    // A stray ACK for no connection is dropped and counted by reason.
    let stray = r#"import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
src, dst = socket.inet_aton("10.1.1.10"), socket.inet_aton("10.0.0.100")
def seg(csum):
    return struct.pack("!HHIIBBHHH", 40000, 80, 1, 1, 5 << 4, 0x10, 65535, csum, 0)
pseudo = src + dst + struct.pack("!BBH", 0, 6, 20)
data = pseudo + seg(0)
total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
while total >> 16:
    total = (total & 0xffff) + (total >> 16)
for _ in range(3):
    s.sendto(seg(~total & 0xffff), ("10.0.0.100", 0))
"#;
    lab.ok(&h.c1, &["python3", "-c", stray]).unwrap();
    let dropped = Lab::wait_for(Duration::from_secs(5), || {
        let m = scrape(&lab, &h.c2);
        sample(&m, r#"rlvs_engine_drops_total{reason="no_connection"}"#).filter(|v| *v >= 3.0)
    });
    assert!(dropped.is_some(), "{}", scrape(&lab, &h.c2));
    // The engine's own figures are in every scrape.
    let m = scrape(&lab, &h.c2);
    assert!(m.contains("rlvs_engine_packets_total{path=\"slow\",action=\"forwarded\"}"), "{m}");
    assert!(sample(&m, "rlvs_engine_connections").is_some(), "{m}");
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

/// A unicast instance in the style of HAProxy front ends (tracked script
/// and interface, two VIPs and an excluded one, nopreempt), alone, so it
/// becomes master: its keepalived.data and keepalived.json as keepalived
/// 2.2.7 wrote them for the same file in the same namespace layout.
#[test]
fn a_unicast_instance_with_trackers_dumps_as_keepalived_does() {
    let mut lab = Lab::new().unwrap();
    let tools = seed_ha::Tools::rlvs(&lab, &common::rlvs()).unwrap();
    let ns = lab.bare_host("ks").unwrap();
    // The lab capture's layout: eth0 and eth1, each a veth with its peer
    // in the namespace (lab/keepalived-signals.sh).
    lab.ok(&ns, &["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "p0"]).unwrap();
    lab.ok(&ns, &["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "p1"]).unwrap();
    for i in ["lo", "eth0", "p0", "eth1", "p1"] {
        lab.ok(&ns, &["ip", "link", "set", i, "up"]).unwrap();
    }
    lab.ok(&ns, &["ip", "addr", "add", "10.2.2.1/24", "dev", "eth0"]).unwrap();
    let dir = start(&mut lab, &tools.keepalived, &ns, "ks", &golden("signals/script-pair.conf"));
    let inst = r#"rlvs_vrrp_state{instance="VI_2",state="MASTER"}"#;
    wait_metric(&lab, &ns, inst, 1.0);
    let files = dump(&lab, &tools.keepalived, &dir, &["DATA", "JSON"], &["keepalived.data", "keepalived.json"]);
    same_fields("unicast keepalived.data", &golden("signals/script-up.keepalived.data"), &files["keepalived.data"]);
    assert_eq!(exporter_data(&golden("signals/script-up.keepalived.data")), exporter_data(&files["keepalived.data"]));
    let mut rj: serde_json::Value = serde_json::from_str(&golden("signals/script-up.keepalived.json")).unwrap();
    let mut oj: serde_json::Value = serde_json::from_str(&files["keepalived.json"]).unwrap();
    for j in [&mut rj, &mut oj] {
        for i in j.as_array_mut().unwrap() {
            i["data"]["last_transition"] = 0.into();
            i["stats"]["advert_sent"] = 0.into();
        }
    }
    assert_eq!(rj, oj, "keepalived.json:\n{}", files["keepalived.json"]);
}
