//! genhash, keepalived's companion: fetches a URL as HTTP_GET or SSL_GET
//! would and prints the MD5 of the page, for a `digest` line. Invoked as
//! `genhash`, as `keepalived -T`, or as `rlvs genhash`; options, messages
//! and output as keepalived 2.2.7's.

use crate::check::probe::{self, Conn, Get, Protocol};
use md5::{Digest, Md5};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "Usage: genhash COMMAND [OPTIONS]
Commands:
   -s server-address -p port -u url
   -S -s server-address -p port -u url
   -h

Options:
Either long or short options are allowed.
   --use-ssl         -S       Use SSL connection to remote server.
   --use-sni         -I       Use SNI during SSL handshake (uses virtualhost setting; see -V).
   --server          -s       Use the specified remote server address.
   --port            -p       Use the specified remote server port.
   --url             -u       Use the specified remote server url.
   --use-virtualhost -V       Use the specified virtualhost in GET query.
   --verbose         -v       Use verbose mode output.
   --help            -h       Display this short inlined help screen.
   --fwmark          -m       Use the specified FW mark.
   --protocol        -P       Use the specified HTTP protocol - '1.0', 1.0c', '1.1'.
                                1.0c means 1.0 with 'Connection: close'
   --timeout         -t       Timeout in seconds
";

/// genhash's options; the letter is the short form, true when it takes
/// an argument.
const OPTIONS: &[(&str, char, bool)] = &[
    ("use-ssl", 'S', false),
    ("use-sni", 'I', false),
    ("server", 's', true),
    ("port", 'p', true),
    ("url", 'u', true),
    ("use-virtualhost", 'V', true),
    ("verbose", 'v', false),
    ("help", 'h', false),
    ("fwmark", 'm', true),
    ("protocol", 'P', true),
    ("timeout", 't', true),
];

#[derive(Debug, Default, PartialEq)]
struct Opts {
    ssl: bool,
    sni: bool,
    server: Option<String>,
    port: Option<String>,
    url: Option<String>,
    vhost: Option<String>,
    verbose: bool,
    fwmark: Option<u32>,
    protocol: Option<String>,
    timeout: Option<u64>,
}

/// Err: what to print on stderr before the usage, exit 1.
fn parse(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        let (letter, inline) = if let Some(long) = a.strip_prefix("--") {
            let (name, v) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v.to_string())));
            match OPTIONS.iter().find(|o| o.0 == name) {
                Some(o) => (o.1, v),
                None => return Err(format!("Unknown option {a}\n")),
            }
        } else if let Some(rest) = a.strip_prefix('-').filter(|r| !r.is_empty()) {
            let mut cs = rest.chars();
            let c = cs.next().unwrap_or('-');
            let tail: String = cs.collect();
            (c, (!tail.is_empty()).then_some(tail))
        } else {
            continue;
        };
        let Some(&(_, _, takes)) = OPTIONS.iter().find(|o| o.1 == letter) else {
            return Err(format!("Unknown option -{letter}\n"));
        };
        let value = if takes {
            match inline.or_else(|| {
                let v = args.get(i).cloned();
                i += 1;
                v
            }) {
                Some(v) => Some(v),
                None => return Err(format!("Missing parameter for option -{letter}\n")),
            }
        } else {
            None
        };
        let v = value.unwrap_or_default();
        match letter {
            'h' => return Ok(None),
            'S' => o.ssl = true,
            'I' => o.sni = true,
            'v' => o.verbose = true,
            's' => o.server = Some(v),
            'p' => o.port = Some(v),
            'u' => o.url = Some(v),
            'V' => o.vhost = Some(v),
            'm' => o.fwmark = Some(v.parse().map_err(|_| format!("Invalid fwmark '{v}'\n"))?),
            'P' => o.protocol = Some(v),
            't' => o.timeout = Some(v.parse().map_err(|_| format!("Invalid timeout '{v}'\n"))?),
            _ => unreachable!("every option is in OPTIONS"),
        }
    }
    Ok(Some(o))
}

pub fn main(argv: Vec<String>) -> ExitCode {
    let o = match parse(argv.get(1..).unwrap_or_default()) {
        Ok(Some(o)) if o.server.is_some() && o.url.is_some() => o,
        Ok(_) => {
            print!("{USAGE}");
            return ExitCode::from(1);
        }
        Err(e) => {
            eprint!("{e}");
            print!("{USAGE}");
            return ExitCode::from(1);
        }
    };
    let server = o.server.as_deref().unwrap_or_default();
    let Ok(ip) = server.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
        eprintln!("server should be an IP, not {server}");
        return ExitCode::from(1);
    };
    let port: u16 = match o.port.as_deref().map(str::parse) {
        Some(Ok(p)) => p,
        None => {
            if o.ssl {
                443
            } else {
                80
            }
        }
        Some(Err(_)) => {
            eprintln!("invalid port {}", o.port.as_deref().unwrap_or_default());
            return ExitCode::from(1);
        }
    };
    let protocol = match o.protocol.as_deref() {
        None | Some("1.0") => Protocol::V10,
        Some("1.0c") => Protocol::V10Close,
        Some("1.1") => Protocol::V11,
        Some(p) => {
            eprintln!("Invalid protocol {p}");
            return ExitCode::from(1);
        }
    };
    let conn = Conn {
        dst: SocketAddr::new(ip, port),
        bindto: None,
        bind_port: None,
        timeout: Duration::from_secs(o.timeout.unwrap_or(5)),
    };
    let url = o.url.clone().unwrap_or_default();
    let get = Get { path: &url, host: o.vhost.as_deref(), protocol, sni: o.sni };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("genhash: {e}");
            return ExitCode::from(1);
        }
    };
    let start = std::time::Instant::now();
    let tls = o.ssl.then(probe::tls_config);
    let response = rt.block_on(probe::fetch(&conn, &get, tls));
    let Ok(response) = response else {
        // keepalived's genhash says this and still exits 0.
        println!("Connection failed");
        return ExitCode::SUCCESS;
    };
    let header_end = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |p| p + 4);
    let (head, body) = response.split_at(header_end);
    let digest = Md5::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    if o.verbose {
        print!("{}", banner("HTTP Header Buffer"));
        print!("{}", hexdump(head));
        print!("{}", banner("HTTP Header Ascii Buffer"));
        println!("{}", String::from_utf8_lossy(head).replace("\r\n", "\n"));
        print!("{}", banner("HTML Buffer"));
        println!("{}", hexdump(body));
        print!("{}", banner("HTML hash resulting"));
        print!("{}", hexdump(&digest));
        print!("{}", banner("HTML hash final resulting"));
        println!("{hex}");
        println!();
        println!("Global response time for [{url}] = {} usecs", start.elapsed().as_micros());
    } else {
        println!("{hex}");
    }
    ExitCode::SUCCESS
}

/// keepalived's section titles: the name between equal runs of spaces,
/// 27 columns or one less.
fn banner(title: &str) -> String {
    let pad = " ".repeat(27usize.saturating_sub(title.len()) / 2);
    format!("-----------------------[{pad}{title}{pad}]-----------------------\n")
}

/// keepalived's dump_buffer: lines of 16 bytes, the offset in decimal,
/// a dash after the eighth, then the printable characters.
fn hexdump(data: &[u8]) -> String {
    let mut out = String::new();
    for (n, chunk) in data.chunks(16).enumerate() {
        out.push_str(&format!("{:04} ", n * 16));
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => out.push_str(&format!(" {b:02x}")),
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push_str(" -");
            }
        }
        out.push_str("   ");
        for i in 0..16 {
            out.push(match chunk.get(i) {
                Some(&b) if (0x20..=0x7e).contains(&b) => b as char,
                Some(_) => '.',
                None => ' ',
            });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn genhash_command_lines() {
        let o = parse(&args(&["-s", "10.0.0.1", "-p", "8080", "-u", "/i.html", "-V", "web", "-P", "1.1"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (o.server.as_deref(), o.port.as_deref(), o.url.as_deref()),
            (Some("10.0.0.1"), Some("8080"), Some("/i.html"))
        );
        assert_eq!((o.vhost.as_deref(), o.protocol.as_deref()), (Some("web"), Some("1.1")));
        let o = parse(&args(&["--server=::1", "--use-ssl", "--url", "/"])).unwrap().unwrap();
        assert!(o.ssl && o.server.as_deref() == Some("::1"));
        assert_eq!(parse(&args(&["-m"])).unwrap_err(), "Missing parameter for option -m\n");
        assert_eq!(parse(&args(&["-r", "1.1"])).unwrap_err(), "Unknown option -r\n");
        assert_eq!(parse(&args(&["-h"])).unwrap(), None);
    }

    /// The lab's capture of keepalived's genhash -v over a 6-byte page.
    #[test]
    fn verbose_dump_as_keepalived_prints_it() {
        assert_eq!(
            banner("HTTP Header Buffer"),
            "-----------------------[    HTTP Header Buffer    ]-----------------------\n"
        );
        assert_eq!(
            banner("HTML Buffer"),
            "-----------------------[        HTML Buffer        ]-----------------------\n"
        );
        assert_eq!(
            banner("HTTP Header Ascii Buffer"),
            "-----------------------[ HTTP Header Ascii Buffer ]-----------------------\n"
        );
        assert_eq!(hexdump(b"hello\n"), "0000  68 65 6c 6c 6f 0a       -                           hello.          \n");
        assert_eq!(
            hexdump(b"HTTP/1.0 200 OK\r\n"),
            "0000  48 54 54 50 2f 31 2e 30 - 20 32 30 30 20 4f 4b 0d   HTTP/1.0 200 OK.\n\
             0016  0a                      -                           .               \n"
        );
    }
}
