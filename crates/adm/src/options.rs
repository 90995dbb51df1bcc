//! ipvsadm's command and option vocabulary and its table of which options
//! each command takes, with the checks that read it (generic_opt_check,
//! tunnel_opt_check).

use crate::cmd::{Ctx, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    None = 0,
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    // rlvs's FULLNAT extensions (DPVS's spelling), after ipvsadm's own.
    AddLaddr,
    DelLaddr,
    GetLaddr,
}

pub(crate) const CMDNAMES: [&str; 17] = [
    "add-service",
    "edit-service",
    "delete-service",
    "flush",
    "list",
    "add-server",
    "delete-server",
    "edit-server",
    "set",
    "start-daemon",
    "stop-daemon",
    "restore",
    "save",
    "zero",
    "add-laddr",
    "del-laddr",
    "get-laddr",
];

// Option bits (OPTC_*), in the order of the table below.
pub(crate) const NUMERIC: usize = 0;
pub(crate) const CONNECTION: usize = 1;
pub(crate) const SERVICE: usize = 2;
pub(crate) const SCHEDULER: usize = 3;
pub(crate) const PERSISTENT: usize = 4;
pub(crate) const NETMASK: usize = 5;
pub(crate) const SERVER: usize = 6;
pub(crate) const FORWARD: usize = 7;
pub(crate) const WEIGHT: usize = 8;
pub(crate) const UTHRESHOLD: usize = 9;
pub(crate) const LTHRESHOLD: usize = 10;
pub(crate) const MCAST: usize = 11;
pub(crate) const TIMEOUT: usize = 12;
pub(crate) const DAEMON: usize = 13;
pub(crate) const STATS: usize = 14;
pub(crate) const RATE: usize = 15;
pub(crate) const THRESHOLDS: usize = 16;
pub(crate) const PERSISTENTCONN: usize = 17;
pub(crate) const NOSORT: usize = 18;
pub(crate) const SYNCID: usize = 19;
pub(crate) const EXACT: usize = 20;
pub(crate) const ONEPACKET: usize = 21;
pub(crate) const PE: usize = 22;
pub(crate) const SCHED_FLAGS: usize = 23;
pub(crate) const MCAST_GROUP: usize = 24;
pub(crate) const MCAST_PORT: usize = 25;
pub(crate) const MCAST_TTL: usize = 26;
pub(crate) const SYNC_MAXLEN: usize = 27;
pub(crate) const TUN_INFO: usize = 28;
pub(crate) const TUN_TYPE: usize = 29;
pub(crate) const TUN_PORT: usize = 30;
pub(crate) const TUN_NOCSUM: usize = 31;
pub(crate) const TUN_CSUM: usize = 32;
pub(crate) const TUN_REMCSUM: usize = 33;
/// rlvs: a FULLNAT local address (-z).
pub(crate) const LADDR: usize = 34;

pub(crate) const OPTNAMES: [&str; 35] = [
    "numeric",
    "connection",
    "service-address",
    "scheduler",
    "persistent",
    "netmask",
    "real-server",
    "forwarding-method",
    "weight",
    "u-threshold",
    "l-threshold",
    "mcast-interface",
    "timeout",
    "daemon",
    "stats",
    "rate",
    "thresholds",
    "persistent-conn",
    "nosort",
    "syncid",
    "exact",
    "ops",
    "pe",
    "sched-flags",
    "mcast-group",
    "mcast-port",
    "mcast-ttl",
    "sync-maxlen",
    "tun-info",
    "tun-type",
    "tun-port",
    "tun-nocsum",
    "tun-csum",
    "tun-remcsum",
    "laddr",
];

/// Legal combinations of commands (rows, in Cmd order) and options (columns,
/// in OPTNAMES order): '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional.
/// ipvsadm 1.31's table, with rlvs's laddr column and FULLNAT rows added.
pub(crate) const COMMANDS_V_OPTIONS: [&[u8; 35]; 17] = [
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
    b"xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b" 11xxxxxxxxx11       xxxxxxx xxxxxx",
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
    b"xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
    b"xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
    b"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b" xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+",
    b"xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+",
    b" x xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
];

pub(crate) const TUNNAMES: [&str; 3] = ["ipip", "gue", "gre"];
/// Per tunnel type, the options tun-port, tun-nocsum, tun-csum, tun-remcsum.
pub(crate) const TUNNEL_TYPES_V_OPTIONS: [&[u8; 4]; 3] = [b"xxxx", b"+111", b"x111"];
pub(crate) const TUNOPTS: [usize; 4] = [TUN_PORT, TUN_NOCSUM, TUN_CSUM, TUN_REMCSUM];

pub(crate) fn generic_opt_check(ctx: &mut Ctx, cmd: Cmd, options: u64) -> Result<(), Exit> {
    let i = cmd as usize - 1;
    let row = COMMANDS_V_OPTIONS[i];
    let mut last = None;
    for j in 0..OPTNAMES.len() {
        let set = options & (1 << j) != 0;
        match (set, row[j]) {
            (false, b'+') => {
                return Err(ctx.fail(
                    2,
                    format!("You need to supply the '{}' option for the '{}' command", OPTNAMES[j], CMDNAMES[i]),
                ))
            }
            (true, b'x') => {
                return Err(ctx.fail(2, format!("Illegal '{}' option with the '{}' command", OPTNAMES[j], CMDNAMES[i])))
            }
            (true, b'1') => match last {
                None => last = Some(j),
                Some(l) => {
                    return Err(ctx.fail(
                        2,
                        format!(
                            "The option '{}' conflicts with the '{}' option in the '{}' command",
                            OPTNAMES[j], OPTNAMES[l], CMDNAMES[i]
                        ),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn tunnel_opt_check(ctx: &mut Ctx, tun_type: u8, options: u64) -> Result<(), Exit> {
    let row = TUNNEL_TYPES_V_OPTIONS[tun_type as usize];
    let mut last = None;
    for (j, &k) in TUNOPTS.iter().enumerate() {
        let set = options & (1 << k) != 0;
        let tn = TUNNAMES[tun_type as usize];
        match (set, row[j]) {
            (false, b'+') => {
                return Err(
                    ctx.fail(2, format!("You need to supply the '{}' option for the '{tn}' tunnel type", OPTNAMES[k]))
                )
            }
            (true, b'x') => {
                return Err(ctx.fail(2, format!("Illegal '{}' option with the '{tn}' tunnel type", OPTNAMES[k])))
            }
            (true, b'1') => match last {
                None => last = Some(k),
                Some(l) => {
                    return Err(ctx.fail(
                        2,
                        format!(
                            "The option '{}' conflicts with the '{}' option in the '{tn}' tunnel type",
                            OPTNAMES[k], OPTNAMES[l]
                        ),
                    ))
                }
            },
            _ => {}
        }
    }
    Ok(())
}
