//! Every checker kind against real servers in a namespace: each server
//! starts healthy (in the table), is then broken, and must leave it.
//! SSL_GET against a real TLS server (openssl-made certificate), DNS_CHECK
//! against a DNS responder, SMTP_CHECK against an SMTP greeter, UDP_CHECK
//! with a required reply, PING_CHECK, FILE_CHECK, MISC_CHECK with
//! misc_dynamic setting the weight, HTTP_GET with a digest.

mod common;

use rlvs_netlab::Lab;
use std::time::Duration;

const SERVERS: &str = r#"
import os, socket, ssl, sys, threading, time
d = sys.argv[1]
def flag(name):
    return os.path.exists(os.path.join(d, name))
def tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(d + "/cert.pem", d + "/key.pem")
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 443)); s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            if flag("tls-down"): c.close(); continue
            t = ctx.wrap_socket(c, server_side=True); t.recv(4096)
            t.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nrs1\n"); t.close()
        except Exception:
            pass
def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 53))
    while True:
        q, a = s.recvfrom(512)
        rcode = 2 if flag("dns-down") else 0
        s.sendto(q[:2] + bytes([0x81, 0x80 | rcode]) + q[4:6] + b"\0\0\0\0\0\0" + q[12:], a)
def smtp():
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 25)); s.listen(64)
    while True:
        c, _ = s.accept()
        try:
            c.sendall(b"554 go away\r\n" if flag("smtp-down") else b"220 mail ESMTP\r\n")
            if c.recv(512).startswith(b"HELO"): c.sendall(b"250 hello\r\n"); c.recv(512)
            c.close()
        except Exception:
            pass
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7))
    while True:
        m, a = s.recvfrom(512)
        s.sendto(b"NOPE" if flag("udp-down") else b"PONG" + m, a)
for f in (tls, dns, smtp, udp):
    threading.Thread(target=f, daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(1)
"#;

#[test]
fn every_checker_kind_takes_a_broken_server_out() {
    let mut lab = Lab::new().unwrap();
    let dir = lab.host("dir", "eth0", "02:00:00:00:08:01", "10.1.1.243/24").unwrap();
    let rs = lab.host("rs", "eth0", "02:00:00:00:08:02", "10.1.1.244/24").unwrap();
    let d = lab.dir().to_string_lossy().into_owned();
    lab.ok(
        &rs,
        &[
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=rs1.example",
            "-keyout",
            &format!("{d}/key.pem"),
            "-out",
            &format!("{d}/cert.pem"),
        ],
    )
    .unwrap();
    std::fs::write(format!("{d}/servers.py"), SERVERS).unwrap();
    lab.spawn(&rs, "servers", &["python3", &format!("{d}/servers.py"), &d]).unwrap();
    rlvs_netlab::web::start(&mut lab, &rs, "web", "rs1", &[]).unwrap();
    assert!(Lab::wait_for(Duration::from_secs(10), || lab.log("servers").contains("ready").then_some(())).is_some());
    let misc = format!("{d}/misc.sh");
    std::fs::write(&misc, format!("#!/bin/sh\nexit $(cat {d}/misc-code)\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&misc, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(format!("{d}/misc-code"), "7").unwrap();
    std::fs::write(format!("{d}/file-state"), "0").unwrap();
    // md5 of "rs1\n", as genhash prints it.
    let digest = "7a6c0d2ef5a9e6e1776090916c66ba3a";
    let vs = |port: u16, check: &str| {
        format!(" virtual_server 10.0.0.100 {port} {{\n delay_loop 1\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 10.1.1.244 {port} {{\n  weight 3\n  {check}\n }}\n}}\n")
    };
    let conf = [
        format!("track_file state {{\n file {d}/file-state\n weight 0\n}}\n"),
        vs(443, "SSL_GET {\n   url {\n    path /\n   }\n   connect_timeout 2\n   retry 0\n   delay_before_retry 1\n  }"),
        vs(53, "DNS_CHECK {\n   type A\n   name example.com\n   connect_timeout 2\n   retry 0\n  }"),
        vs(25, "SMTP_CHECK {\n   helo_name rlvs.test\n   connect_timeout 2\n   retry 0\n  }"),
        vs(7, "UDP_CHECK {\n   payload 50494e47\n   require_reply 504f4e47\n   connect_timeout 2\n   retry 0\n   delay_before_retry 1\n  }"),
        vs(9, "PING_CHECK {\n   connect_timeout 2\n   retry 0\n   delay_before_retry 1\n  }"),
        vs(10, "FILE_CHECK {\n   track_file state\n  }"),
        vs(11, &format!("MISC_CHECK {{\n   misc_path {misc}\n   misc_dynamic\n   misc_timeout 2\n  }}")),
        vs(80, &format!("HTTP_GET {{\n   url {{\n    path /\n    digest {digest}\n   }}\n   connect_timeout 2\n   retry 0\n   delay_before_retry 1\n  }}")),
    ]
    .concat();
    let f = format!("{d}/k.conf");
    std::fs::write(&f, conf).unwrap();
    common::start_daemon(&mut lab, &dir, "daemon", &["--engine", "none", "-f", &f]);
    let adm = common::ipvsadm(&lab);
    let table = |lab: &Lab| lab.ok(&dir, &[&adm, "-Ln"]).unwrap_or_default();
    let line =
        |t: &str, port: u16| t.lines().find(|l| l.contains(&format!("-> 10.1.1.244:{port} "))).map(str::to_string);
    let ports = [443u16, 53, 25, 7, 9, 10, 11, 80];
    // Healthy: all in the table (they start in, and stay in).
    std::thread::sleep(Duration::from_secs(4));
    let t = table(&lab);
    for p in ports {
        assert!(line(&t, p).is_some(), "port {p} missing:\n{t}\n{}", lab.log("daemon"));
    }
    // misc_dynamic: exit 7 is weight 5.
    assert!(line(&t, 11).unwrap().contains("Route   5 "), "{t}");
    // Break every server.
    for f in ["tls-down", "dns-down", "smtp-down", "udp-down"] {
        std::fs::write(format!("{d}/{f}"), "").unwrap();
    }
    lab.ok(&rs, &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1"]).unwrap();
    std::fs::write(format!("{d}/file-state"), "1").unwrap();
    std::fs::write(format!("{d}/misc-code"), "1").unwrap();
    lab.stop("web", libc::SIGTERM).unwrap();
    rlvs_netlab::web::start(&mut lab, &rs, "web2", "rs1-changed", &[]).unwrap();
    let gone = Lab::wait_for(Duration::from_secs(20), || {
        let t = table(&lab);
        ports.iter().all(|p| line(&t, *p).is_none()).then_some(())
    });
    assert!(gone.is_some(), "still in:\n{}\n{}", table(&lab), lab.log("daemon"));
    let log = lab.log("daemon");
    for p in ports {
        assert!(
            log.contains(&format!("Removing service [10.1.1.244]:tcp:{p} from VS [10.0.0.100]:tcp:{p}")),
            "{p}: {log}"
        );
    }
    assert!(log.contains("MD5 digest error"), "{log}");
    // And back.
    for f in ["tls-down", "dns-down", "smtp-down", "udp-down"] {
        std::fs::remove_file(format!("{d}/{f}")).unwrap();
    }
    lab.ok(&rs, &["sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=0"]).unwrap();
    std::fs::write(format!("{d}/file-state"), "0").unwrap();
    std::fs::write(format!("{d}/misc-code"), "0").unwrap();
    let back = Lab::wait_for(Duration::from_secs(20), || {
        let t = table(&lab);
        ports.iter().filter(|p| **p != 80).all(|p| line(&t, *p).is_some()).then_some(())
    });
    assert!(back.is_some(), "not back:\n{}\n{}", table(&lab), lab.log("daemon"));
}
