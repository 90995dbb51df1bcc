//! A real HTTP server for real servers: Python's http.server serving a
//! directory (GET) over IPv4 and IPv6, plus POST /upload answering with the length and SHA-256
//! of the body, so uploads through the VIP can be checked end to end.

use crate::Lab;
use anyhow::Result;

const SERVER: &str = r#"
import hashlib, http.server, socket, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        left = n
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        body = ("%d %s\n" % (n - left, h.hexdigest())).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class DualStack(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()
directory, port = sys.argv[1], int(sys.argv[2])
handler = lambda *a, **k: Handler(*a, directory=directory, **k)
DualStack(("::", port), handler).serve_forever()
"#;

/// Starts a web server on port 80 in `ns` whose index page is `body` (plus
/// a newline, as `echo rs1 > index.html` makes it). `extra` files go beside it.
pub fn start(lab: &mut Lab, ns: &str, name: &str, body: &str, extra: &[(&str, &[u8])]) -> Result<()> {
    start_on(lab, ns, name, body, extra, 80)
}

/// As [`start`], on another port.
pub fn start_on(lab: &mut Lab, ns: &str, name: &str, body: &str, extra: &[(&str, &[u8])], port: u16) -> Result<()> {
    let root = lab.dir().join(format!("www-{name}"));
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), format!("{body}\n"))?;
    for (f, data) in extra {
        std::fs::write(root.join(f), data)?;
    }
    let script = lab.dir().join("www.py");
    std::fs::write(&script, SERVER)?;
    let (s, r) = (script.to_string_lossy().into_owned(), root.to_string_lossy().into_owned());
    lab.spawn(ns, name, &["python3", &s, &r, &port.to_string()])?;
    lab.wait_listening(ns, "tcp", port, name)
}

/// A UDP request/response server: answers every datagram with
/// `<tag>:<datagram>`.
pub fn udp_echo(lab: &mut Lab, ns: &str, name: &str, tag: &str, port: u16) -> Result<()> {
    udp_echo_on(lab, ns, name, tag, "0.0.0.0", port)
}

/// As [`udp_echo`], bound to one address (a DR or TUN real server binds the
/// VIP, so its answers leave from it).
pub fn udp_echo_on(lab: &mut Lab, ns: &str, name: &str, tag: &str, addr: &str, port: u16) -> Result<()> {
    let script = [
        "import socket".to_string(),
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)".to_string(),
        format!("s.bind(('{addr}',{port}))"),
        "while True:".to_string(),
        "  d,a=s.recvfrom(2048)".to_string(),
        format!("  s.sendto(b'{tag}:'+d,a)"),
    ]
    .join("\n");
    lab.spawn(ns, name, &["python3", "-c", &script])?;
    lab.wait_listening(ns, "udp", port, name)
}

/// Sends `n` datagrams to `addr:port` from `ns`, one socket each, and
/// returns what came back as "<reply> from <address>:<port>" lines.
pub fn udp_ask(lab: &Lab, ns: &str, addr: &str, port: u16, n: usize) -> Result<Vec<String>> {
    let script = [
        "import socket".to_string(),
        format!("for i in range({n}):"),
        "  s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)".to_string(),
        "  s.settimeout(2)".to_string(),
        format!("  s.sendto(b'q%d'%i,('{addr}',{port}))"),
        "  try:".to_string(),
        "    d,a=s.recvfrom(2048)".to_string(),
        "    print(d.decode(),'from','%s:%d'%a)".to_string(),
        "  except socket.timeout:".to_string(),
        "    print('timeout')".to_string(),
    ]
    .join("\n");
    Ok(lab.ok(ns, &["python3", "-c", &script])?.lines().map(String::from).collect())
}

/// A TCP server that greets every connection with `<tag>\n` and keeps it
/// open until the client closes it: long-lived connections on demand.
pub fn tcp_greeter(lab: &mut Lab, ns: &str, name: &str, tag: &str, port: u16) -> Result<()> {
    let script = [
        "import socket, threading".to_string(),
        "def hold(c):".to_string(),
        format!("  c.sendall(b'{tag}\\n')"),
        "  while c.recv(1024): pass".to_string(),
        "  c.close()".to_string(),
        "s=socket.socket()".to_string(),
        "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)".to_string(),
        format!("s.bind(('0.0.0.0',{port}))"),
        "s.listen(256)".to_string(),
        "while True:".to_string(),
        "  c,_=s.accept()".to_string(),
        "  threading.Thread(target=hold,args=(c,),daemon=True).start()".to_string(),
    ]
    .join("\n");
    lab.spawn(ns, name, &["python3", "-c", &script])?;
    lab.wait_listening(ns, "tcp", port, name)
}

/// Opens `n` TCP connections to `addr:port` from `ns` one after the other,
/// keeping all of them open, and returns the greeting each one got.
pub fn tcp_hold(lab: &Lab, ns: &str, addr: &str, port: u16, n: usize) -> Result<Vec<String>> {
    let script = [
        "import socket".to_string(),
        "held=[]".to_string(),
        format!("for i in range({n}):"),
        format!("  c=socket.create_connection(('{addr}',{port}),timeout=5)"),
        "  print(c.makefile().readline().strip(), flush=True)".to_string(),
        "  held.append(c)".to_string(),
    ]
    .join("\n");
    Ok(lab.ok(ns, &["python3", "-c", &script])?.lines().map(String::from).collect())
}

const LISTENERS: &str = r#"
import resource, selectors, socket, sys
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
first, count, addrs = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
sel = selectors.DefaultSelector()
for a in addrs:
    for p in range(first, first + count):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a, p)); s.listen(256); s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept(); c.close()
        except OSError:
            pass
"#;

/// Thousands of TCP listeners in one process (ports `first..first+count` on
/// each of `addrs`) that accept and close, for health checkers at scale;
/// returns once all of them listen.
pub fn tcp_listeners(lab: &mut Lab, ns: &str, name: &str, addrs: &[String], first: u16, count: usize) -> Result<()> {
    let script = lab.dir().join(format!("{name}.py"));
    std::fs::write(&script, LISTENERS)?;
    let script = script.to_string_lossy().into_owned();
    lab.spawn(ns, name, &["python3", &script, &first.to_string(), &count.to_string(), &addrs.join(",")])?;
    let up = Lab::wait_for(std::time::Duration::from_secs(60), || lab.log(name).contains("listening").then_some(()));
    anyhow::ensure!(up.is_some(), "listeners did not start: {}", lab.log(name));
    Ok(())
}

const PACED: &str = r#"
import hashlib, http.server, socket, sys, time
size, rate, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
block = bytes((i * 7919 + 13) % 251 for i in range(65536))
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/":
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        chunk, sent, t0 = 16384, 0, time.monotonic()
        while sent < size:
            n = min(chunk, size - sent)
            off = sent % 65536
            data = (block[off:] + block)[:n]
            self.wfile.write(data)
            sent += n
            # The server keeps to `rate`: the file stays on the wire to its
            # last byte instead of sitting in buffers.
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
Server(("0.0.0.0", port), Handler).serve_forever()
"#;

/// An HTTP server whose every path but `/` is `size` bytes of a fixed
/// pattern (see [`paced_body`]) sent at `rate` bytes per second: long
/// downloads that stay on the wire to their last byte, whatever the
/// client's buffers.
pub fn paced(lab: &mut Lab, ns: &str, name: &str, size: usize, rate: usize, port: u16) -> Result<()> {
    let script = lab.dir().join("paced.py");
    std::fs::write(&script, PACED)?;
    let s = script.to_string_lossy().into_owned();
    lab.spawn(ns, name, &["python3", &s, &size.to_string(), &rate.to_string(), &port.to_string()])?;
    lab.wait_listening(ns, "tcp", port, name)
}

/// What [`paced`] serves: `size` bytes of the pattern.
pub fn paced_body(size: usize) -> Vec<u8> {
    let block: Vec<u8> = (0..65536u32).map(|i| ((i * 7919 + 13) % 251) as u8).collect();
    (0..size).map(|i| block[i % 65536]).collect()
}
