//! The IPVS TCP state machine (ip_vs_proto_tcp.c, the default table used when
//! secure_tcp is off).
//!
//! IPVS does not follow TCP closely: it moves on the first flag it finds in
//! the order RST, SYN, FIN, ACK, with a separate row set for packets from the
//! client (INPUT), from the real server (OUTPUT), and from the client on
//! connections whose replies never pass the director (INPUT_ONLY: DR and
//! TUN, until a reply is seen).

use rlvs_wire::TcpFlags;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established,
    SynSent,
    SynRecv,
    FinWait,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    SynAck,
}

use TcpState::*;

impl TcpState {
    /// From the kernel's number (IP_VS_TCP_S_*), which the enum mirrors.
    pub fn from_number(n: u16) -> Option<TcpState> {
        const ALL: [TcpState; 11] =
            [None, Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, SynAck];
        ALL.get(usize::from(n)).copied()
    }

    /// The name `ipvsadm -Lc` prints.
    pub fn name(self) -> &'static str {
        match self {
            None => "NONE",
            Established => "ESTABLISHED",
            SynSent => "SYN_SENT",
            SynRecv => "SYN_RECV",
            FinWait => "FIN_WAIT",
            TimeWait => "TIME_WAIT",
            Close => "CLOSE",
            CloseWait => "CLOSE_WAIT",
            LastAck => "LAST_ACK",
            Listen => "LISTEN",
            SynAck => "SYNACK",
        }
    }

    pub const ALL: [TcpState; 11] =
        [None, Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, SynAck];
}

/// Which way a packet travels, in IPVS's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to real server, on a connection that also sees replies.
    Input,
    /// Real server to client.
    Output,
    /// Client to real server on a connection whose replies bypass the director.
    InputOnly,
}

/// Default timeouts in seconds per state (tcp_timeouts[]).
pub fn default_timeout(s: TcpState) -> u32 {
    match s {
        None => 2,
        Established => 15 * 60,
        SynSent => 2 * 60,
        SynRecv => 60,
        FinWait => 2 * 60,
        TimeWait => 2 * 60,
        Close => 10,
        CloseWait => 60,
        LastAck => 30,
        Listen => 2 * 60,
        SynAck => 120,
    }
}

// Rows are syn, fin, ack, rst; columns are the current state in enum order.
type Row = [TcpState; 11];
const INPUT: [Row; 4] = [
    [SynRecv, Established, Established, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv],
    [Close, CloseWait, SynSent, TimeWait, TimeWait, TimeWait, Close, CloseWait, LastAck, Listen, TimeWait],
    [Close, Established, SynSent, Established, FinWait, TimeWait, Close, CloseWait, Close, Listen, Established],
    [Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, SynRecv],
];
const OUTPUT: [Row; 4] = [
    [SynSent, Established, SynSent, SynRecv, SynSent, SynSent, SynSent, SynSent, SynSent, Listen, SynRecv],
    [TimeWait, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, TimeWait, LastAck, Listen, TimeWait],
    [
        Established,
        Established,
        SynSent,
        Established,
        FinWait,
        TimeWait,
        Close,
        CloseWait,
        LastAck,
        Established,
        Established,
    ],
    [Close, Close, SynSent, Close, Close, TimeWait, Close, Close, Close, Close, Close],
];
const INPUT_ONLY: [Row; 4] = [
    [SynRecv, Established, Established, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv],
    [Close, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, CloseWait, LastAck, Listen, TimeWait],
    [Close, Established, SynSent, Established, FinWait, TimeWait, Close, CloseWait, Close, Listen, Established],
    [Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, Close],
];

// secure_tcp's table (tcp_states_dos): a client's ACK alone does not
// establish a NAT connection, the real server's answer does; a DR SYN
// waits in SYNACK.
const INPUT_SECURE: [Row; 4] = [
    [SynRecv, Established, Established, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynRecv, SynAck],
    [Close, CloseWait, SynSent, TimeWait, TimeWait, TimeWait, Close, CloseWait, LastAck, Listen, SynAck],
    [Close, Established, SynSent, SynRecv, FinWait, TimeWait, Close, CloseWait, Close, Listen, SynAck],
    [Close, Close, Close, SynRecv, Close, Close, Close, Close, LastAck, Listen, Close],
];
const OUTPUT_SECURE: [Row; 4] = [
    [SynSent, Established, SynSent, SynAck, SynSent, SynSent, SynSent, SynSent, SynSent, Listen, SynAck],
    [TimeWait, FinWait, SynSent, TimeWait, FinWait, TimeWait, Close, TimeWait, LastAck, Listen, TimeWait],
    OUTPUT[2],
    OUTPUT[3],
];
const INPUT_ONLY_SECURE: [Row; 4] = [
    [SynAck, Established, Established, SynRecv, SynAck, SynAck, SynAck, SynAck, SynAck, SynAck, SynAck],
    INPUT_ONLY[1],
    INPUT_ONLY[2],
    INPUT_ONLY[3],
];

/// The next state for a segment with `flags` seen in `dir` while in `state`.
/// A segment with none of RST/SYN/FIN/ACK moves the connection to CLOSE, as
/// the kernel does.
pub fn next_state(state: TcpState, dir: Direction, flags: TcpFlags) -> TcpState {
    next_state_in(state, dir, flags, false)
}

/// As [`next_state`], by secure_tcp's table when `secure`.
pub fn next_state_in(state: TcpState, dir: Direction, flags: TcpFlags, secure: bool) -> TcpState {
    let row = if flags.rst() {
        3
    } else if flags.syn() {
        0
    } else if flags.fin() {
        1
    } else if flags.ack() {
        2
    } else {
        return Close;
    };
    let table = match (dir, secure) {
        (Direction::Input, false) => &INPUT,
        (Direction::Output, false) => &OUTPUT,
        (Direction::InputOnly, false) => &INPUT_ONLY,
        (Direction::Input, true) => &INPUT_SECURE,
        (Direction::Output, true) => &OUTPUT_SECURE,
        (Direction::InputOnly, true) => &INPUT_ONLY_SECURE,
    };
    table[row][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: TcpFlags = TcpFlags(TcpFlags::SYN);
    const ACK: TcpFlags = TcpFlags(TcpFlags::ACK);
    const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN | TcpFlags::ACK);
    const RST: TcpFlags = TcpFlags(TcpFlags::RST);
    const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN | TcpFlags::ACK);

    #[test]
    fn dr_client_lifecycle() {
        // What the seed's curl does through a DR director: SYN, ACK, data, FIN.
        let d = Direction::InputOnly;
        let s = next_state(None, d, SYN);
        assert_eq!(s, SynRecv);
        let s = next_state(s, d, ACK);
        assert_eq!(s, Established);
        let s = next_state(s, d, FIN_ACK);
        assert_eq!(s, FinWait);
        assert_eq!(next_state(s, d, ACK), FinWait);
        assert_eq!(next_state(s, d, RST), Close);
    }

    #[test]
    fn nat_lifecycle() {
        let s = next_state(None, Direction::Input, SYN);
        assert_eq!(s, SynRecv);
        let s = next_state(s, Direction::Output, SYN_ACK);
        assert_eq!(s, SynRecv, "SYN wins over ACK in the row choice");
        let s = next_state(s, Direction::Input, ACK);
        assert_eq!(s, Established);
        let s = next_state(s, Direction::Input, FIN_ACK);
        assert_eq!(s, CloseWait);
        let s = next_state(s, Direction::Output, FIN_ACK);
        assert_eq!(s, TimeWait);
        assert_eq!(next_state(Established, Direction::Output, FIN_ACK), FinWait);
        assert_eq!(next_state(FinWait, Direction::Input, FIN_ACK), TimeWait);
    }

    #[test]
    fn flag_precedence_and_no_flags() {
        let all = TcpFlags(TcpFlags::SYN | TcpFlags::FIN | TcpFlags::RST | TcpFlags::ACK);
        assert_eq!(next_state(Established, Direction::Input, all), Close, "RST first");
        assert_eq!(next_state(Established, Direction::Input, TcpFlags(TcpFlags::PSH)), Close);
    }

    /// secure_tcp's table, cell by cell from the kernel's tcp_states_dos.
    #[test]
    fn every_secure_transition_matches_kernel_grid() {
        let grid = "
INPUT syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSA
INPUT fin sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sSA
INPUT ack sCL sES sSS sSR sFW sTW sCL sCW sCL sLI sSA
INPUT rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL
OUTPUT syn sSS sES sSS sSA sSS sSS sSS sSS sSS sLI sSA
OUTPUT fin sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
OUTPUT ack sES sES sSS sES sFW sTW sCL sCW sLA sES sES
OUTPUT rst sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL
INPUT_ONLY syn sSA sES sES sSR sSA sSA sSA sSA sSA sSA sSA
INPUT_ONLY fin sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
INPUT_ONLY ack sCL sES sSS sES sFW sTW sCL sCW sCL sLI sES
INPUT_ONLY rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL";
        assert_eq!(check_grid(grid, true), 3 * 4 * 11);
    }

    /// Every cell of the three tables, written out as the kernel's comment
    /// grid (sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA) so a transcription
    /// error in either copy shows up.
    #[test]
    fn every_transition_matches_kernel_grid() {
        let grid = "
INPUT syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
INPUT fin sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sTW
INPUT ack sCL sES sSS sES sFW sTW sCL sCW sCL sLI sES
INPUT rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sSR
OUTPUT syn sSS sES sSS sSR sSS sSS sSS sSS sSS sLI sSR
OUTPUT fin sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
OUTPUT ack sES sES sSS sES sFW sTW sCL sCW sLA sES sES
OUTPUT rst sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL
INPUT_ONLY syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
INPUT_ONLY fin sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
INPUT_ONLY ack sCL sES sSS sES sFW sTW sCL sCW sCL sLI sES
INPUT_ONLY rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL";
        assert_eq!(check_grid(grid, false), 3 * 4 * 11);
    }

    fn check_grid(grid: &str, secure: bool) -> usize {
        let code = |s: &str| match s {
            "sNO" => None,
            "sES" => Established,
            "sSS" => SynSent,
            "sSR" => SynRecv,
            "sFW" => FinWait,
            "sTW" => TimeWait,
            "sCL" => Close,
            "sCW" => CloseWait,
            "sLA" => LastAck,
            "sLI" => Listen,
            "sSA" => SynAck,
            _ => panic!("{s}"),
        };
        let mut checked = 0;
        for line in grid.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dir = match f[0] {
                "INPUT" => Direction::Input,
                "OUTPUT" => Direction::Output,
                _ => Direction::InputOnly,
            };
            let flags = match f[1] {
                "syn" => SYN,
                "fin" => TcpFlags(TcpFlags::FIN),
                "ack" => ACK,
                _ => RST,
            };
            for (from, want) in TcpState::ALL.iter().zip(&f[2..]) {
                assert_eq!(next_state_in(*from, dir, flags, secure), code(want), "{line} from {from:?}");
                checked += 1;
            }
        }
        checked
    }

    #[test]
    fn default_timeouts_are_the_kernels() {
        assert_eq!(default_timeout(Established), 900);
        assert_eq!(default_timeout(SynRecv), 60);
        assert_eq!(default_timeout(FinWait), 120);
        assert_eq!(default_timeout(TimeWait), 120);
        assert_eq!(default_timeout(Close), 10);
        assert_eq!(default_timeout(CloseWait), 60);
        assert_eq!(default_timeout(LastAck), 30);
    }
}
