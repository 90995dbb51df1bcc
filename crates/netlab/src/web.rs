//! A real HTTP server for real servers: Python's http.server serving a
//! directory (GET), plus POST /upload answering with the length and SHA-256
//! of the body, so uploads through the VIP can be checked end to end.

use crate::Lab;
use anyhow::Result;

const SERVER: &str = r#"
import hashlib, http.server, sys
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
directory, port = sys.argv[1], int(sys.argv[2])
handler = lambda *a, **k: Handler(*a, directory=directory, **k)
http.server.ThreadingHTTPServer(("0.0.0.0", port), handler).serve_forever()
"#;

/// Starts a web server in `ns` whose index page is `body` (plus a newline,
/// as `echo rs1 > index.html` makes it). `extra` files go beside it.
pub fn start(lab: &mut Lab, ns: &str, name: &str, body: &str, extra: &[(&str, &[u8])]) -> Result<()> {
    let root = lab.dir().join(format!("www-{name}"));
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("index.html"), format!("{body}\n"))?;
    for (f, data) in extra {
        std::fs::write(root.join(f), data)?;
    }
    let script = lab.dir().join("www.py");
    std::fs::write(&script, SERVER)?;
    let (s, r) = (script.to_string_lossy().into_owned(), root.to_string_lossy().into_owned());
    lab.spawn(ns, name, &["python3", &s, &r, "80"])?;
    Ok(())
}
