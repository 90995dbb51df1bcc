//! The packages, built by scripts/package.sh from the test build's binary,
//! as a packager would check them: files and relations in the .deb and the
//! .rpm, maintainer scripts, split debug symbols, every man page rendering
//! without a groff warning, completions, and the faces answering by name
//! from the unpacked package.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The packages, built once for every test here.
fn packages() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = root().join("target/packages-test");
        let st = Command::new("bash")
            .arg(root().join("scripts/package.sh"))
            .env("RLVS_PACKAGE_PROFILE", "debug")
            .env("RLVS_PACKAGE_COMPRESS", "fast")
            .env("RLVS_PACKAGE_OUT", &out)
            .status()
            .expect("running scripts/package.sh");
        assert!(st.success(), "scripts/package.sh failed");
        out
    })
}

fn run(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(o.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn deb() -> String {
    packages().join(format!("rlvs_{VERSION}-1_amd64.deb")).display().to_string()
}

fn rpm() -> String {
    packages().join(format!("rlvs-{VERSION}-1.x86_64.rpm")).display().to_string()
}

/// The .deb unpacked into a directory of its own.
fn unpacked() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = packages().join("unpacked");
        let _ = std::fs::remove_dir_all(&dir);
        run("dpkg-deb", &["-x", &deb(), &dir.display().to_string()]);
        dir
    })
}

#[test]
fn deb_carries_the_faces_units_and_debian_configuration() {
    let control = run("dpkg-deb", &["-f", &deb()]);
    for line in ["Provides: keepalived, ipvsadm", "Conflicts: keepalived, ipvsadm", "Replaces: keepalived, ipvsadm"] {
        assert!(control.contains(line), "{line}\n{control}");
    }
    let files = run("dpkg-deb", &["-c", &deb()]);
    for f in [
        "./usr/sbin/rlvs",
        "./usr/sbin/ipvsadm -> rlvs",
        "./usr/sbin/keepalived -> rlvs",
        "./usr/sbin/ipvsadm-save -> rlvs",
        "./usr/bin/genhash -> ../sbin/rlvs",
        "./lib/systemd/system/keepalived.service",
        "./lib/systemd/system/rlvs.service",
        "./lib/systemd/system/ipvsadm.service",
        "./etc/default/keepalived",
        "./etc/default/ipvsadm",
        "./etc/ipvsadm.rules",
        "./etc/keepalived/keepalived.conf.sample",
        "./usr/share/man/man5/keepalived.conf.5.gz",
        "./usr/share/man/man8/ipvsadm.8.gz",
        "./usr/share/bash-completion/completions/rlvs",
        "./usr/share/bash-completion/completions/ipvsadm",
    ] {
        assert!(files.contains(f), "{f} missing:\n{files}");
    }
    // A live keepalived.conf would start the sample's VIPs at boot.
    assert!(!files.contains("./etc/keepalived/keepalived.conf\n"), "{files}");
    let u = unpacked();
    let unit = std::fs::read_to_string(u.join("lib/systemd/system/keepalived.service")).unwrap();
    for l in [
        "Type=notify",
        "ConditionFileNotEmpty=/etc/keepalived/keepalived.conf",
        "EnvironmentFile=-/etc/default/keepalived",
        "ExecStart=/usr/sbin/keepalived --dont-fork $DAEMON_ARGS",
        "ExecReload=/usr/sbin/rlvs ctl reload --wait",
        "Restart=on-failure",
        "WatchdogSec=",
        "TimeoutAbortSec=",
    ] {
        assert!(unit.contains(l), "{l}\n{unit}");
    }
    assert!(std::fs::read_to_string(u.join("etc/default/keepalived")).unwrap().contains("DAEMON_ARGS=\"\""));
    assert!(std::fs::read_to_string(u.join("etc/default/ipvsadm")).unwrap().contains("AUTO=\"false\""));
    // Every file under /etc is a conffile, so purge removes it.
    let ctl = packages().join("ctl");
    run("dpkg-deb", &["-e", &deb(), &ctl.display().to_string()]);
    let conffiles = std::fs::read_to_string(ctl.join("conffiles")).unwrap();
    for f in [
        "/etc/default/keepalived",
        "/etc/default/ipvsadm",
        "/etc/ipvsadm.rules",
        "/etc/keepalived/keepalived.conf.sample",
    ] {
        assert!(conffiles.lines().any(|l| l == f), "{f} not a conffile:\n{conffiles}");
    }
    let prerm = std::fs::read_to_string(ctl.join("prerm")).unwrap();
    assert!(prerm.contains("systemctl stop keepalived.service") && prerm.contains("rlvs cleanup"), "{prerm}");
}

/// One file of the .rpm's payload.
fn rpm_file(path: &str) -> String {
    let script = format!("rpm2cpio {} | cpio -i --quiet --to-stdout .{path}", rpm());
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    assert!(!out.stdout.is_empty(), "{path} not in the rpm: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn rpm_lists_its_files_scripts_and_rhel_relations() {
    let files = run("rpm", &["-qlp", &rpm()]);
    for f in [
        "/usr/sbin/rlvs",
        "/usr/sbin/ipvsadm",
        "/usr/sbin/keepalived",
        "/usr/bin/genhash",
        "/usr/lib/systemd/system/keepalived.service",
        "/usr/lib/systemd/system/ipvsadm.service",
        "/etc/sysconfig/keepalived",
        "/usr/share/man/man8/keepalived.8.gz",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} missing:\n{files}");
    }
    assert!(!files.contains("/etc/default/"), "{files}");
    let config = run("rpm", &["-qpc", &rpm()]);
    assert!(config.contains("/etc/sysconfig/keepalived"), "{config}");
    for (what, flag) in [("provides", "--provides"), ("conflicts", "--conflicts"), ("obsoletes", "--obsoletes")] {
        let rel = run("rpm", &["-qp", flag, &rpm()]);
        assert!(rel.lines().any(|l| l == "keepalived") && rel.lines().any(|l| l == "ipvsadm"), "{what}: {rel}");
    }
    let scripts = run("rpm", &["-qp", "--scripts", &rpm()]);
    assert!(scripts.contains("preuninstall scriptlet"), "{scripts}");
    assert!(scripts.contains("disable --now keepalived.service") && scripts.contains("rlvs cleanup"), "{scripts}");
    assert!(scripts.contains("try-restart keepalived.service"), "{scripts}");
    let unit = rpm_file("/usr/lib/systemd/system/keepalived.service");
    assert!(unit.contains("EnvironmentFile=-/etc/sysconfig/keepalived"), "{unit}");
    assert!(unit.contains("$KEEPALIVED_OPTIONS"), "{unit}");
    let ipvsadm = rpm_file("/usr/lib/systemd/system/ipvsadm.service");
    assert!(ipvsadm.contains("ipvsadm-restore < /etc/sysconfig/ipvsadm"), "restores at start: {ipvsadm}");
    assert!(ipvsadm.contains("ipvsadm-save -n > /etc/sysconfig/ipvsadm"), "saves at stop: {ipvsadm}");
}

#[test]
fn debug_symbols_are_split_off_by_build_id() {
    let bin = unpacked().join("usr/sbin/rlvs").display().to_string();
    let sections = run("readelf", &["-S", &bin]);
    assert!(!sections.contains(".debug_info"), "the packaged binary still has debug info");
    assert!(sections.contains(".gnu_debuglink"), "{sections}");
    let notes = run("readelf", &["-n", &bin]);
    let id = notes.lines().find_map(|l| l.split("Build ID: ").nth(1)).expect("a build id").trim().to_string();
    let path = format!("./usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    let dbgsym = packages().join(format!("rlvs-dbgsym_{VERSION}-1_amd64.deb")).display().to_string();
    assert!(run("dpkg-deb", &["-c", &dbgsym]).contains(&path), "{path} not in the dbgsym package");
    let debuginfo = packages().join(format!("rlvs-debuginfo-{VERSION}-1.x86_64.rpm")).display().to_string();
    assert!(run("rpm", &["-qlp", &debuginfo]).contains(&path[1..]), "{path} not in the debuginfo package");
}

#[test]
fn every_man_page_renders_without_warnings() {
    let mut pages = 0;
    for sec in ["man1", "man5", "man8"] {
        for e in std::fs::read_dir(unpacked().join("usr/share/man").join(sec)).unwrap().flatten() {
            let o =
                Command::new("man").args(["--warnings", "-l"]).arg(e.path()).env("MANWIDTH", "80").output().unwrap();
            assert!(o.status.success(), "{}", e.path().display());
            assert!(o.stderr.is_empty(), "{}: {}", e.path().display(), String::from_utf8_lossy(&o.stderr));
            assert!(o.stdout.len() > 200, "{} renders to almost nothing", e.path().display());
            pages += 1;
        }
    }
    // ipvsadm, -save, -restore, keepalived, genhash, keepalived.conf, and rlvs's own.
    assert!(pages >= 12, "{pages} pages");
    let conf =
        Command::new("man").arg("-l").arg(unpacked().join("usr/share/man/man5/keepalived.conf.5.gz")).output().unwrap();
    let conf = String::from_utf8_lossy(&conf.stdout);
    // The keyword lists come from the reader's own table.
    assert!(conf.contains("virtual_router_id") && conf.contains("lvs_sync_daemon"), "{conf}");
}

fn complete(script: &str, func: &str, words: &[&str]) -> Vec<String> {
    let list = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
    let prog = format!(
        "source {script}; COMP_WORDS=({list}); COMP_CWORD={}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; \
         {func} {} '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words.len() - 1,
        words[0],
        words[words.len() - 1],
        words[words.len().saturating_sub(2)]
    );
    let o = Command::new("bash").arg("-c").arg(prog).output().unwrap();
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_completes_rlvs_and_ipvsadm() {
    let dir = unpacked().join("usr/share/bash-completion/completions");
    let rlvs = dir.join("rlvs").display().to_string();
    let got = complete(&rlvs, "_rlvs", &["rlvs", ""]);
    for w in ["daemon", "ctl", "adm", "keepalived", "genhash"] {
        assert!(got.iter().any(|g| g == w), "rlvs <TAB> lacks {w}: {got:?}");
    }
    assert!(complete(&rlvs, "_rlvs", &["rlvs", "ctl", ""]).iter().any(|g| g == "reload"));
    let ipvsadm = dir.join("ipvsadm").display().to_string();
    let got = complete(&ipvsadm, "_ipvsadm", &["ipvsadm", "-A", "-s", ""]);
    assert!(got.iter().any(|g| g == "wlc") && got.iter().any(|g| g == "mh"), "{got:?}");
    let got = complete(&ipvsadm, "_ipvsadm", &["ipvsadm", "--st"]);
    assert!(got.iter().all(|g| g.starts_with("--st")), "{got:?}");
    for w in ["--start-daemon", "--stop-daemon", "--stats"] {
        assert!(got.iter().any(|g| g == w), "ipvsadm --st<TAB> lacks {w}: {got:?}");
    }
}

#[test]
fn faces_answer_by_their_installed_names() {
    let u = unpacked();
    let out = Command::new(u.join("usr/sbin/keepalived")).arg("--signum=DATA").output().unwrap();
    assert_eq!((String::from_utf8_lossy(&out.stdout).as_ref(), out.status.code()), ("10\n", Some(0)));
    let out = Command::new(u.join("usr/sbin/keepalived")).arg("--bogus").output().unwrap();
    assert_eq!(
        (String::from_utf8_lossy(&out.stderr).as_ref(), out.status.code()),
        ("Unknown option --bogus\n", Some(1))
    );
    let out = Command::new(u.join("usr/bin/genhash")).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Usage: genhash COMMAND [OPTIONS]"));
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(u.join("usr/sbin/ipvsadm")).arg("-h").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("ipvsadm v1.31"), "{out:?}");
}
