//! The slice of popt's behaviour ipvsadm relies on: short-option clusters
//! (`-Ln`), attached arguments (`-t10.0.0.1:80`), `--long[=value]`, optional
//! arguments that refuse a following word starting with '-', permuted
//! positional arguments, and popt's error strings.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    Required,
    Optional,
}

pub struct OptSpec {
    pub long: &'static str,
    pub short: Option<char>,
    pub arg: ArgKind,
    pub tag: Tag,
}

/// What an option means to ipvsadm (its popt `val`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Add,
    Edit,
    Delete,
    Clear,
    ListUpper,
    ListLower,
    Zero,
    AddServer,
    EditServer,
    DeleteServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masq,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    FullNat,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Laddr,
}

use ArgKind::{None as N, Optional as O, Required as R};

macro_rules! opt {
    ($long:expr, $short:expr, $arg:expr, $tag:ident) => {
        OptSpec { long: $long, short: $short, arg: $arg, tag: Tag::$tag }
    };
}

/// ipvsadm 1.31's option table, in its order.
pub const TABLE: &[OptSpec] = &[
    opt!("add-service", Some('A'), N, Add),
    opt!("edit-service", Some('E'), N, Edit),
    opt!("delete-service", Some('D'), N, Delete),
    opt!("clear", Some('C'), N, Clear),
    opt!("list", Some('L'), N, ListUpper),
    opt!("list", Some('l'), N, ListLower),
    opt!("zero", Some('Z'), N, Zero),
    opt!("add-server", Some('a'), N, AddServer),
    opt!("edit-server", Some('e'), N, EditServer),
    opt!("delete-server", Some('d'), N, DeleteServer),
    opt!("set", None, N, Set),
    opt!("help", Some('h'), N, Help),
    opt!("version", Some('v'), N, Version),
    opt!("restore", Some('R'), N, Restore),
    opt!("save", Some('S'), N, Save),
    opt!("start-daemon", None, R, StartDaemon),
    opt!("stop-daemon", None, R, StopDaemon),
    opt!("tcp-service", Some('t'), R, Tcp),
    opt!("udp-service", Some('u'), R, Udp),
    opt!("sctp-service", None, R, Sctp),
    opt!("fwmark-service", Some('f'), R, Fwmark),
    opt!("scheduler", Some('s'), R, Scheduler),
    opt!("persistent", Some('p'), O, Persistent),
    opt!("netmask", Some('M'), R, Netmask),
    opt!("real-server", Some('r'), R, RealServer),
    opt!("masquerading", Some('m'), N, Masq),
    opt!("ipip", Some('i'), N, Ipip),
    opt!("gatewaying", Some('g'), N, Gatewaying),
    opt!("weight", Some('w'), R, Weight),
    opt!("u-threshold", Some('x'), R, UThreshold),
    opt!("l-threshold", Some('y'), R, LThreshold),
    opt!("numeric", Some('n'), N, Numeric),
    opt!("connection", Some('c'), N, Connection),
    opt!("mcast-interface", None, R, McastInterface),
    opt!("syncid", None, R, SyncId),
    opt!("timeout", None, N, Timeout),
    opt!("daemon", None, N, Daemon),
    opt!("stats", None, N, Stats),
    opt!("rate", None, N, Rate),
    opt!("thresholds", None, N, Thresholds),
    opt!("persistent-conn", None, N, PersistentConn),
    opt!("nosort", None, N, NoSort),
    opt!("sort", None, N, Sort),
    opt!("exact", Some('X'), N, Exact),
    opt!("ipv6", Some('6'), N, Ipv6),
    opt!("ops", Some('o'), N, Ops),
    opt!("pe", None, R, Pe),
    opt!("sched-flags", Some('b'), R, SchedFlags),
    opt!("mcast-group", None, R, McastGroup),
    opt!("mcast-port", None, R, McastPort),
    opt!("mcast-ttl", None, R, McastTtl),
    opt!("sync-maxlen", None, R, SyncMaxlen),
    opt!("tun-info", None, N, TunInfo),
    opt!("tun-type", None, R, TunType),
    opt!("tun-port", None, R, TunPort),
    opt!("tun-nocsum", None, N, TunNocsum),
    opt!("tun-csum", None, N, TunCsum),
    opt!("tun-remcsum", None, N, TunRemcsum),
    // rlvs's FULLNAT extensions, in DPVS's spelling.
    opt!("fullnat", None, N, FullNat),
    opt!("add-laddr", None, N, AddLaddr),
    opt!("del-laddr", None, N, DelLaddr),
    opt!("get-laddr", None, N, GetLaddr),
    opt!("laddr", Some('z'), R, Laddr),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoptError {
    /// POPT_ERROR_BADOPT, with the argv word popt blames.
    BadOption(String),
    /// POPT_ERROR_NOARG.
    MissingArgument(String),
}

impl PoptError {
    /// The line ipvsadm prints: `<word>: <poptStrerror>`.
    pub fn message(&self) -> String {
        match self {
            PoptError::BadOption(w) => format!("{w}: unknown option"),
            PoptError::MissingArgument(w) => format!("{w}: missing argument"),
        }
    }
}

/// An iterator over (tag, argument, argv word) in command-line order, popt style.
pub struct Parser<'a> {
    args: &'a [String],
    next: usize,
    /// Remaining characters of the short-option cluster being read.
    cluster: Option<(usize, usize)>,
    pub leftovers: Vec<String>,
    only_positional: bool,
}

impl<'a> Parser<'a> {
    /// `args` excludes the program name.
    pub fn new(args: &'a [String]) -> Self {
        Parser { args, next: 0, cluster: None, leftovers: Vec::new(), only_positional: false }
    }

    fn find_short(c: char) -> Option<&'static OptSpec> {
        TABLE.iter().find(|o| o.short == Some(c))
    }

    fn take_arg(&mut self, spec: &OptSpec, word: &str) -> Result<Option<String>, PoptError> {
        if spec.arg == ArgKind::None {
            return Ok(None);
        }
        match self.args.get(self.next) {
            None if spec.arg == ArgKind::Required => Err(PoptError::MissingArgument(word.to_string())),
            None => Ok(None),
            Some(a) if spec.arg == ArgKind::Optional && a.starts_with('-') => Ok(None),
            Some(a) => {
                self.next += 1;
                Ok(Some(a.clone()))
            }
        }
    }

    /// The argv word popt would blame now (poptBadOption): the last one consumed.
    pub fn bad_word(&self) -> String {
        self.next.checked_sub(1).and_then(|i| self.args.get(i)).cloned().unwrap_or_default()
    }

    /// The next option, None at the end, or popt's error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<(Tag, Option<String>), PoptError>> {
        loop {
            if let Some((word, pos)) = self.cluster {
                let w = &self.args[word];
                let Some(c) = w[pos..].chars().next() else {
                    self.cluster = None;
                    continue;
                };
                let rest = pos + c.len_utf8();
                let Some(spec) = Self::find_short(c) else {
                    self.cluster = None;
                    return Some(Err(PoptError::BadOption(w.clone())));
                };
                if spec.arg != ArgKind::None && rest < w.len() {
                    self.cluster = None;
                    return Some(Ok((spec.tag, Some(w[rest..].to_string()))));
                }
                self.cluster = Some((word, rest));
                if rest >= w.len() {
                    self.cluster = None;
                }
                let w = w.clone();
                return Some(self.take_arg(spec, &w).map(|a| (spec.tag, a)));
            }
            let w = self.args.get(self.next)?.clone();
            self.next += 1;
            if self.only_positional || !w.starts_with('-') || w == "-" {
                self.leftovers.push(w);
                continue;
            }
            if w == "--" {
                self.only_positional = true;
                continue;
            }
            if let Some(long) = w.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (long, None),
                };
                let Some(spec) = TABLE.iter().find(|o| o.long == name) else {
                    return Some(Err(PoptError::BadOption(w)));
                };
                return Some(match (spec.arg, value) {
                    (ArgKind::None, _) => Ok((spec.tag, None)),
                    (_, Some(v)) => Ok((spec.tag, Some(v))),
                    (_, None) => self.take_arg(spec, &w).map(|a| (spec.tag, a)),
                });
            }
            self.cluster = Some((self.next - 1, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = (Vec<(Tag, Option<String>)>, Vec<String>, Option<PoptError>);

    fn all(args: &[&str]) -> Parsed {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut p = Parser::new(&v);
        let mut out = Vec::new();
        let mut err = None;
        while let Some(r) = p.next() {
            match r {
                Ok(x) => out.push(x),
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        (out, p.leftovers, err)
    }

    #[test]
    fn clusters_attached_and_long_forms() {
        let (o, _, e) = all(&["-Ln"]);
        assert_eq!(o, vec![(Tag::ListUpper, None), (Tag::Numeric, None)]);
        assert!(e.is_none());
        let (o, _, _) = all(&["-At10.0.0.1:22", "--scheduler=wrr"]);
        assert_eq!(
            o,
            vec![(Tag::Add, None), (Tag::Tcp, Some("10.0.0.1:22".into())), (Tag::Scheduler, Some("wrr".into()))]
        );
        let (o, _, _) = all(&["-A", "-t", "-s"]);
        assert_eq!(o[1], (Tag::Tcp, Some("-s".into())), "a required argument takes the next word whatever it is");
    }

    #[test]
    fn optional_argument_refuses_options() {
        let (o, _, _) = all(&["-A", "-p", "-s", "rr"]);
        assert_eq!(o[1], (Tag::Persistent, None));
        let (o, _, _) = all(&["-A", "-p", "60"]);
        assert_eq!(o[1], (Tag::Persistent, Some("60".into())));
    }

    #[test]
    fn errors_name_the_word() {
        assert_eq!(all(&["-A", "-t"]).2, Some(PoptError::MissingArgument("-t".into())));
        assert_eq!(all(&["-L", "--bogus"]).2, Some(PoptError::BadOption("--bogus".into())));
        assert_eq!(all(&["-Lq"]).2, Some(PoptError::BadOption("-Lq".into())));
    }

    #[test]
    fn positionals_are_permuted() {
        let (o, left, _) = all(&["--set", "1", "2", "-n", "3"]);
        assert_eq!(o.len(), 2);
        assert_eq!(left, vec!["1", "2", "3"]);
    }
}
