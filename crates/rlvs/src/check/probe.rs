//! The probes, one per checker kind, as keepalived's checkers talk to a
//! real server. Each is bounded by connect_timeout (MISC_CHECK by its
//! misc_timeout) and answers Ok or Fail with the reason keepalived gives.

use md5::{Digest, Md5};
use rlvs_conf::model::{HttpCheck, UdpCheck, Url};
use rlvs_health::checker::Outcome;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Conn {
    pub dst: SocketAddr,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub timeout: Duration,
}

fn fail(msg: impl Into<String>) -> Outcome {
    Outcome::Fail(msg.into())
}

async fn connect(c: &Conn) -> Result<TcpStream, String> {
    let sock = if c.dst.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }.map_err(|e| e.to_string())?;
    if c.bindto.is_some() || c.bind_port.is_some() {
        let ip = c.bindto.unwrap_or(if c.dst.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) });
        sock.bind(SocketAddr::new(ip, c.bind_port.unwrap_or(0))).map_err(|e| format!("bind failed: {e}"))?;
    }
    match tokio::time::timeout(c.timeout, sock.connect(c.dst)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("Error connecting ({e})")),
        Err(_) => Err("Timeout connecting".into()),
    }
}

pub async fn tcp(c: &Conn) -> Outcome {
    match connect(c).await {
        Ok(_) => Outcome::Ok,
        Err(e) => fail(e),
    }
}

/// HTTP_GET / SSL_GET for one URL: `GET path HTTP/1.x` as keepalived sends
/// it, the status checked against the URL's codes (any 2xx by default) and
/// the body's MD5 against its digest.
pub async fn http(c: &Conn, check: &HttpCheck, url: &Url, tls: Option<Arc<rustls::ClientConfig>>) -> Outcome {
    let get = Get {
        path: &url.path,
        host: url.virtualhost.as_deref().or(check.virtualhost.as_deref()),
        protocol: match check.http_protocol.as_deref() {
            Some("1.1") => Protocol::V11,
            Some("1.0c") => Protocol::V10Close,
            _ => Protocol::V10,
        },
        sni: check.enable_sni,
    };
    match fetch(c, &get, tls).await {
        Ok(response) => judge(&response, url),
        Err(e) => fail(e),
    }
}

/// The HTTP version keepalived's request line names; 1.0c is 1.0 with
/// `Connection: close` (genhash's -P).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    V10,
    V10Close,
    V11,
}

/// One GET as keepalived sends it.
pub struct Get<'a> {
    pub path: &'a str,
    /// The Host header (virtualhost); the address and port otherwise.
    pub host: Option<&'a str>,
    pub protocol: Protocol,
    /// Name the virtual host in TLS's SNI.
    pub sni: bool,
}

/// Sends `get` and reads the whole response (header and body).
pub async fn fetch(c: &Conn, get: &Get<'_>, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Vec<u8>, String> {
    let stream = connect(c).await?;
    let host_hdr = match get.host {
        Some(h) => h.to_string(),
        None => {
            let ip = match c.dst.ip() {
                IpAddr::V6(a) => format!("[{a}]"),
                a => a.to_string(),
            };
            let default_port = if tls.is_some() { 443 } else { 80 };
            if c.dst.port() == default_port {
                ip
            } else {
                format!("{ip}:{}", c.dst.port())
            }
        }
    };
    let (minor, conn_hdr) = match get.protocol {
        Protocol::V10 => (0, ""),
        Protocol::V10Close => (0, "Connection: close\r\n"),
        Protocol::V11 => (1, "Connection: close\r\n"),
    };
    let req =
        format!("GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{conn_hdr}Host: {host_hdr}\r\n\r\n", get.path);
    match tls {
        Some(cfg) => {
            let name = match (get.host, get.sni) {
                (Some(h), true) => rustls::pki_types::ServerName::try_from(h.to_string()).ok(),
                _ => None,
            }
            .unwrap_or_else(|| rustls::pki_types::ServerName::IpAddress(c.dst.ip().into()));
            let connector = tokio_rustls::TlsConnector::from(cfg);
            let s = match tokio::time::timeout(c.timeout, connector.connect(name, stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("SSL handshake failed ({e})")),
                Err(_) => return Err("Timeout SSL handshake".into()),
            };
            exchange(s, req.as_bytes(), c.timeout).await
        }
        None => exchange(stream, req.as_bytes(), c.timeout).await,
    }
}

async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    req: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    match tokio::time::timeout(timeout, s.write_all(req)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("Error writing to server ({e})")),
        Err(_) => return Err("Timeout writing data".into()),
    }
    // keepalived reads to the end (HTTP/1.0: the server closes), each read
    // bounded by the timeout; a response is capped so a garbage server
    // cannot make the checker hold memory.
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(timeout, s.read(&mut buf)).await {
            Ok(Ok(0)) => return Ok(out),
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > 16 << 20 {
                    return Err("Response too long".into());
                }
            }
            // A TLS peer closing without close_notify still delivered the page.
            Ok(Err(_)) if !out.is_empty() => return Ok(out),
            Ok(Err(e)) => return Err(format!("Read error ({e})")),
            Err(_) => return Err("Timeout reading data".into()),
        }
    }
}

/// The status code and (if set) the digest of one response.
pub fn judge(response: &[u8], url: &Url) -> Outcome {
    let Some(header_end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return fail("HTTP response header not found");
    };
    let head = String::from_utf8_lossy(&response[..header_end]);
    let status: Option<u16> =
        head.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok());
    let Some(code) = status else { return fail("HTTP status line not understood") };
    let ok = if url.status_codes.is_empty() {
        (200..300).contains(&code)
    } else {
        url.status_codes.iter().any(|(a, b)| (*a..=*b).contains(&code))
    };
    if !ok {
        return fail(format!("HTTP status code error to {} => HTTP status code = {code}", url.path));
    }
    if let Some(want) = &url.digest {
        let body = &response[header_end + 4..];
        let got: String = Md5::digest(body).iter().map(|b| format!("{b:02x}")).collect();
        if &got != want {
            return fail(format!("MD5 digest error to {} => MD5SUM {got}", url.path));
        }
    }
    Outcome::Ok
}

/// SMTP_CHECK: the 220 banner, HELO answered with 250, QUIT.
pub async fn smtp(c: &Conn, helo: &str) -> Outcome {
    let mut s = match connect(c).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let read_code = async |s: &mut TcpStream| -> Result<u16, String> {
        let mut buf = [0u8; 512];
        let n = match tokio::time::timeout(c.timeout, s.read(&mut buf)).await {
            Ok(Ok(n)) if n >= 3 => n,
            Ok(Ok(_)) => return Err("short reply".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("timeout".into()),
        };
        String::from_utf8_lossy(&buf[..3.min(n)]).parse().map_err(|_| "bad reply".into())
    };
    match read_code(&mut s).await {
        Ok(220) => {}
        Ok(c) => return fail(format!("Bad server greeting ({c})")),
        Err(e) => return fail(e),
    }
    if s.write_all(format!("HELO {helo}\r\n").as_bytes()).await.is_err() {
        return fail("Error sending HELO");
    }
    match read_code(&mut s).await {
        Ok(250) => {}
        Ok(c) => return fail(format!("Bad HELO response ({c})")),
        Err(e) => return fail(e),
    }
    let _ = s.write_all(b"QUIT\r\n").await;
    Outcome::Ok
}

/// UDP_CHECK: no ICMP error within the timeout is a success, unless a
/// reply is required (and must start with `require_reply`).
pub async fn udp(c: &Conn, u: &UdpCheck) -> Outcome {
    let bind = SocketAddr::new(
        c.bindto.unwrap_or(if c.dst.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) }),
        c.bind_port.unwrap_or(0),
    );
    let Ok(s) = UdpSocket::bind(bind).await else { return fail("UDP socket failed") };
    if s.connect(c.dst).await.is_err() {
        return fail("UDP connect failed");
    }
    let payload = u.payload.clone().unwrap_or_default();
    if s.send(&payload).await.is_err() {
        return fail(format!("UDP connection to {} failed.", c.dst));
    }
    let mut buf = vec![0u8; u.max_reply_length.unwrap_or(65535) as usize + 1];
    match tokio::time::timeout(c.timeout, s.recv(&mut buf)).await {
        Err(_) if u.require_reply.is_none() => Outcome::Ok,
        Err(_) => fail("no reply"),
        Ok(Err(e)) => fail(format!("UDP connection failed ({e})")),
        Ok(Ok(n)) => {
            let r = &buf[..n];
            let min_ok = u.min_reply_length.is_none_or(|m| n >= m as usize);
            let max_ok = u.max_reply_length.is_none_or(|m| n <= m as usize);
            let data_ok = u.require_reply.as_ref().is_none_or(|want| r.starts_with(want));
            if min_ok && max_ok && data_ok {
                Outcome::Ok
            } else {
                fail("UDP check reply data mismatch.")
            }
        }
    }
}

/// DNS_CHECK: a query of `qtype` for `name`; any answer with RCODE 0.
pub async fn dns(c: &Conn, qtype: &str, name: &str) -> Outcome {
    let code: u16 = match qtype {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        _ => 6,
    };
    let id = (std::process::id() as u16)
        ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
            as u16);
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&code.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let bind = SocketAddr::new(
        c.bindto.unwrap_or(if c.dst.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) }),
        0,
    );
    let Ok(s) = UdpSocket::bind(bind).await else { return fail("failed to create socket") };
    if s.connect(c.dst).await.is_err() || s.send(&q).await.is_err() {
        return fail("failed to write socket.");
    }
    let mut buf = [0u8; 1500];
    loop {
        match tokio::time::timeout(c.timeout, s.recv(&mut buf)).await {
            Err(_) => return fail("read timeout from socket"),
            Ok(Err(e)) => return fail(format!("failed to read socket ({e})")),
            Ok(Ok(n)) if n < 12 => return fail("too small response"),
            Ok(Ok(_)) if buf[0..2] != id.to_be_bytes() => continue,
            Ok(Ok(_)) => {
                let rcode = buf[3] & 0x0f;
                return if buf[2] & 0x80 == 0 {
                    fail("not a response")
                } else if rcode != 0 {
                    fail(format!("read error occurred. (rcode = {rcode})"))
                } else {
                    Outcome::Ok
                };
            }
        }
    }
}

/// PING_CHECK: one ICMP echo answered within the timeout.
pub async fn ping(c: &Conn) -> Outcome {
    let dst = c.dst.ip();
    let timeout = c.timeout;
    // A raw socket read in a blocking task: the answer is one packet.
    let r = tokio::task::spawn_blocking(move || ping_blocking(dst, timeout)).await;
    match r {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => fail(e),
        Err(_) => fail("ping task failed"),
    }
}

fn ping_blocking(dst: IpAddr, timeout: Duration) -> Result<(), String> {
    let v6 = dst.is_ipv6();
    let (domain, proto) = if v6 { (libc::AF_INET6, libc::IPPROTO_ICMPV6) } else { (libc::AF_INET, libc::IPPROTO_ICMP) };
    // SAFETY: plain socket(2), closed below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(format!("ICMP socket: {}", std::io::Error::last_os_error()));
    }
    let guard = scopeguard(fd);
    let tv = libc::timeval { tv_sec: timeout.as_secs() as i64, tv_usec: timeout.subsec_micros() as i64 };
    // SAFETY: tv is a valid timeval.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of_val(&tv) as u32,
        )
    };
    let ident = (std::process::id() as u16).wrapping_add(0x5a5a);
    let mut pkt = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&1u16.to_be_bytes());
    pkt.extend_from_slice(b"rlvs ping check");
    if !v6 {
        let c = rlvs_wire::checksum::checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let (sa, len) = crate::check::sockaddr_of(SocketAddr::new(dst, 0));
    // SAFETY: pkt and sa live across the call.
    let n = unsafe {
        libc::sendto(
            fd,
            pkt.as_ptr() as *const libc::c_void,
            pkt.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            len,
        )
    };
    if n < 0 {
        return Err("send ICMP packet fail".into());
    }
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    while std::time::Instant::now() < deadline {
        // SAFETY: buf is ours.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 0 {
            return Err("recv ICMP packet error".into());
        }
        let b = &buf[..n as usize];
        let icmp = if v6 { b } else { b.get(usize::from(b.first().map_or(5, |x| x & 0x0f)) * 4..).unwrap_or(&[]) };
        if icmp.len() >= 8 && icmp[0] == if v6 { 129 } else { 0 } && icmp[4..6] == ident.to_be_bytes() {
            drop(guard);
            return Ok(());
        }
    }
    Err("no ICMP echo reply".into())
}

struct FdGuard(i32);
impl Drop for FdGuard {
    fn drop(&mut self) {
        // SAFETY: closing our own fd once.
        unsafe { libc::close(self.0) };
    }
}
fn scopeguard(fd: i32) -> FdGuard {
    FdGuard(fd)
}

/// A TLS client configuration for SSL_GET: like keepalived, the server's
/// certificate is not verified (a health check asks "does it answer?");
/// the SSL block's certificate and key, if any, are not used yet.
pub fn tls_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    Arc::new(cfg)
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(codes: Vec<(u16, u16)>, digest: Option<&str>) -> Url {
        let pos = rlvs_conf::Pos { file: "k".into(), line: 1, col: 1 };
        Url { pos, path: "/".into(), digest: digest.map(str::to_string), status_codes: codes, virtualhost: None }
    }

    #[test]
    fn status_codes_and_digest() {
        let resp = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nrs1\n";
        assert_eq!(judge(resp, &url(vec![], None)), Outcome::Ok);
        assert!(matches!(judge(resp, &url(vec![(300, 399)], None)), Outcome::Fail(_)));
        assert_eq!(judge(b"HTTP/1.1 302 Found\r\n\r\n", &url(vec![(300, 399)], None)), Outcome::Ok);
        // md5("rs1\n") as genhash prints it.
        let d = "0ee2d1dc7d1fd4d3f7e6ef5c9ec8ef42";
        let got: String = Md5::digest(b"rs1\n").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(judge(resp, &url(vec![], Some(&got))), Outcome::Ok);
        assert!(matches!(judge(resp, &url(vec![], Some(d))), Outcome::Fail(_)) || got == d);
        assert!(matches!(judge(b"garbage", &url(vec![], None)), Outcome::Fail(_)));
        assert!(matches!(judge(b"\r\n\r\n", &url(vec![], None)), Outcome::Fail(_)));
    }
}
