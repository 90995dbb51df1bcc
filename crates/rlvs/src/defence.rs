//! The connection table's bound and IPVS's defences as options: the
//! daemon's flags (and their environment variables, which the keepalived
//! face reads), and `rlvs ctl defence`, which shows and changes them at
//! run time as `sysctl net.ipv4.vs.*` does for the kernel.

use rlvs_ctl::{DefenceChange, Request, Response};

/// The sysctls' values: 0 off, 1 on when memory runs short, 3 always on.
fn level(s: &str) -> Result<u8, String> {
    match s.parse::<u8>() {
        Ok(v) if v <= 3 => Ok(v),
        _ => Err(format!("{s:?} is not 0, 1, 2 or 3")),
    }
}

/// The table's bound as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// What an eighth of memory holds.
    Auto,
    Unbounded,
    Connections(u64),
}

fn limit(s: &str) -> Result<Limit, String> {
    match s {
        "auto" => Ok(Limit::Auto),
        "none" => Ok(Limit::Unbounded),
        n => n
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .map(Limit::Connections)
            .ok_or_else(|| format!("{n:?} is not a count above 0, auto or none")),
    }
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct DefenceArgs {
    /// Bound on the connection table, in connections: `auto` (what an
    /// eighth of memory holds, counting user space and the XDP maps), a
    /// count, or `none`. At the bound new connections are refused, or
    /// replace never-answered ones when drop_entry is on.
    #[arg(long, value_parser = limit)]
    pub conn_limit: Option<Limit>,
    /// net.ipv4.vs.drop_entry: 0 off, 1 when memory runs short, 3 always.
    #[arg(long, value_parser = level)]
    pub drop_entry: Option<u8>,
    /// net.ipv4.vs.drop_packet: 0 off, 1 when memory runs short, 3 always.
    #[arg(long, value_parser = level)]
    pub drop_packet: Option<u8>,
    /// net.ipv4.vs.secure_tcp: 0 off, 1 when memory runs short, 3 always.
    #[arg(long, value_parser = level)]
    pub secure_tcp: Option<u8>,
    /// net.ipv4.vs.amemthresh: memory runs short when less than this
    /// many pages of the table's bound are left (default 1024).
    #[arg(long)]
    pub amemthresh: Option<u64>,
    /// net.ipv4.vs.am_droprate: drop_packet at 3 drops one new connection
    /// in this many (default 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub am_droprate: Option<u32>,
}

impl DefenceArgs {
    /// The options the keepalived face takes from its environment
    /// (RLVS_CONN_LIMIT, RLVS_DROP_ENTRY, ...): keepalived has no flags
    /// for them. Only there: `rlvs ctl defence` must not pick them up.
    pub fn from_env() -> DefenceArgs {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            d: DefenceArgs,
        }
        let names = ["conn-limit", "drop-entry", "drop-packet", "secure-tcp", "amemthresh", "am-droprate"];
        let argv = names.iter().filter_map(|n| {
            let var = format!("RLVS_{}", n.replace('-', "_").to_uppercase());
            std::env::var(var).ok().map(|v| format!("--{n}={v}"))
        });
        let argv = std::iter::once("rlvs".to_string()).chain(argv);
        <Only as clap::Parser>::try_parse_from(argv).map(|o| o.d).unwrap_or_else(|e| {
            tracing::warn!("ignoring the defence settings in the environment: {e}");
            DefenceArgs::default()
        })
    }

    pub fn change(&self) -> DefenceChange {
        DefenceChange {
            drop_entry: self.drop_entry,
            drop_packet: self.drop_packet,
            secure_tcp: self.secure_tcp,
            amemthresh: self.amemthresh,
            am_droprate: self.am_droprate,
            limit: match self.conn_limit {
                None | Some(Limit::Auto) => None,
                Some(Limit::Unbounded) => Some(None),
                Some(Limit::Connections(n)) => Some(Some(n)),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.change() == DefenceChange::default()
    }

    /// The engine's starting configuration, and whether it derives the
    /// bound from memory.
    pub fn config(&self) -> (rlvs_lvs::defence::DefenceConfig, bool) {
        let mut cfg = rlvs_lvs::defence::DefenceConfig::default();
        self.change().apply(&mut cfg);
        (cfg, matches!(self.conn_limit, None | Some(Limit::Auto)))
    }
}

/// `rlvs ctl defence`: changes what is given, then shows the state.
pub fn ctl(args: &DefenceArgs, json: bool) -> anyhow::Result<()> {
    let mut c = rlvs_ctl::Client::connect().map_err(|e| anyhow::anyhow!("no rlvs daemon in this namespace: {e}"))?;
    if !args.is_empty() {
        match c.call(&Request::SetDefence(args.change()))? {
            Response::Ok => {}
            Response::Refused(why) => anyhow::bail!("refused: {why}"),
            other => anyhow::bail!("unexpected answer {other:?}"),
        }
    }
    let e = match c.call(&Request::EngineStats)? {
        Response::EngineStats(e) => e,
        other => anyhow::bail!("unexpected answer {other:?}"),
    };
    if json {
        println!("{}", serde_json::to_string(&e)?);
        return Ok(());
    }
    let Some(d) = e.defence else {
        println!("connections {} (the kernel's table: see sysctl net.ipv4.vs)", e.connections);
        return Ok(());
    };
    let (c, limit) = (&d.config, d.config.limit.map_or("none".to_string(), |l| l.to_string()));
    let avail = d.available_pages.map_or("unbounded".to_string(), |p| format!("{p} pages"));
    println!("connections       {} of {limit} ({} bytes each)", e.connections, c.bytes_per_conn);
    println!("available         {avail} (amemthresh {} pages)", c.amemthresh);
    println!("drop_entry        {}", c.drop_entry);
    println!("drop_packet       {} (rate {}, am_droprate {})", c.drop_packet, d.drop_rate, c.am_droprate);
    println!("secure_tcp        {}", c.secure_tcp);
    println!("refused at bound  {}", d.refused_at_limit);
    println!("dropped packets   {}", d.packets_dropped);
    println!("dropped entries   {} swept, {} replaced", d.entries_dropped, d.entries_replaced);
    Ok(())
}
