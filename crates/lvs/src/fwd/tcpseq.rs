//! FULLNAT's TCP translation: the client's sequence numbers and timestamps
//! are moved into a space of the director's own, so that a real server
//! sees every (LIP, lport) connection start where a fresh connect() from
//! the director would.
//!
//! Why: FULLNAT reuses local ports towards a real server while the server
//! may still hold the previous connection on that port in TIME_WAIT. Linux
//! accepts a SYN on a TIME_WAIT socket only if its timestamp is newer than
//! the last one seen, or (without timestamps) its sequence number is past
//! the old one. Clients randomise both per connection, so about half the
//! reused ports were refused (PAWS), each costing the client a reset and a
//! SYN retransmission. Here the first SYN fixes two per-connection offsets:
//! - sequence: the new initial sequence number is a keyed hash of the
//!   (LIP, lport, RIP, rport) tuple plus a clock (RFC 6528, as Linux);
//! - timestamp: TSval is mapped onto the director's millisecond clock.
//!
//! Both grow with time, so a reused port always looks newer to the server.
//! Towards the server, seq and TSval gain their offsets; towards the
//! client, ack, SACK edges and TSecr lose them. Unlike DPVS, which strips
//! the timestamp option from SYNs, timestamps stay in use end to end.

use rlvs_wire::tcp::{field, options, OPT_SACK, OPT_TIMESTAMP};
use rlvs_wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket};

/// A FULLNAT connection's offsets, fixed by its first SYN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqAdjust {
    /// Added to the client's sequence numbers.
    pub seq: u32,
    /// Added to the client's TSval; None when the SYN had no timestamp.
    pub ts: Option<u32>,
}

/// The TCP segment of an IPv4 or IPv6 packet (no IPv6 extension headers),
/// if it is TCP and its header is whole.
fn tcp_of(l3: &mut [u8]) -> Option<TcpPacket<&mut [u8]>> {
    let l4 = match l3.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(l3).ok()?;
            (ip.protocol() == IpProtocol::Tcp).then(|| ip.into_payload_mut())?
        }
        6 => {
            let ip = Ipv6Packet::new_checked(l3).ok()?;
            (ip.next_header() == IpProtocol::Tcp).then(|| ip.into_payload_mut())?
        }
        _ => return None,
    };
    TcpPacket::new_checked(l4).ok()
}

/// Client to real server: seq and TSval move into the director's space.
pub fn to_server(l3: &mut [u8], adj: SeqAdjust, partial: bool) {
    let Some(mut tcp) = tcp_of(l3) else { return };
    tcp.update_word32(field::SEQ, partial, |seq| seq.wrapping_add(adj.seq));
    if let Some(ts) = adj.ts {
        let found = options(tcp.header()).find(|&(kind, _, len)| kind == OPT_TIMESTAMP && len == 10);
        if let Some((_, at, _)) = found {
            tcp.update_word32(at + 2, partial, |v| v.wrapping_add(ts));
        }
    }
}

/// Real server to client: ack, SACK edges and TSecr move back.
pub fn to_client(l3: &mut [u8], adj: SeqAdjust, partial: bool) {
    let Some(mut tcp) = tcp_of(l3) else { return };
    if tcp.flags().ack() {
        tcp.update_word32(field::ACK, partial, |ack| ack.wrapping_sub(adj.seq));
    }
    // At most 4 SACK blocks fit in the 40 bytes of options: 8 edges.
    let (mut edges, mut n, mut tsecr) = ([0usize; 8], 0, None);
    for (kind, at, len) in options(tcp.header()) {
        match kind {
            OPT_SACK if (len - 2) % 8 == 0 => {
                for edge in (at + 2..at + len).step_by(4) {
                    if n < edges.len() {
                        edges[n] = edge;
                        n += 1;
                    }
                }
            }
            OPT_TIMESTAMP if len == 10 => tsecr = Some(at + 6),
            _ => {}
        }
    }
    for &edge in &edges[..n] {
        tcp.update_word32(edge, partial, |v| v.wrapping_sub(adj.seq));
    }
    if let (Some(at), Some(ts)) = (tsecr, adj.ts) {
        tcp.update_word32(at, partial, |v| v.wrapping_sub(ts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_wire::{IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpPacket, TcpRepr};
    use std::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 168, 100, 254);

    /// A segment with `opts` (padded to words) after the fixed header.
    fn segment(flags: u8, seq: u32, ack: u32, opts: &[u8]) -> Vec<u8> {
        let olen = opts.len().div_ceil(4) * 4;
        let ip = Ipv4Repr {
            src: SRC,
            dst: DST,
            protocol: IpProtocol::Tcp,
            payload_len: 20 + olen + 3,
            ttl: 64,
            ident: 1,
            dont_frag: true,
        };
        let mut b = vec![0u8; ip.buffer_len()];
        ip.emit(&mut b);
        TcpRepr { src_port: 8080, dst_port: 2000, seq, ack, flags: TcpFlags(flags), window: 100 }.emit(&mut b[20..]);
        b[32] = (((20 + olen) / 4) << 4) as u8;
        b[40..40 + opts.len()].copy_from_slice(opts);
        b[40 + olen..].copy_from_slice(b"abc");
        TcpPacket::new_checked(&mut b[20..]).unwrap().fill_checksum_v4(SRC, DST);
        b
    }

    fn valid(b: &[u8]) -> bool {
        let ip = Ipv4Packet::new_checked(b).unwrap();
        TcpPacket::new_checked(ip.payload()).unwrap().verify_checksum_v4(SRC, DST)
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn seq_and_odd_aligned_timestamp_move_with_a_valid_checksum() {
        // NOP, then the timestamp option at an odd offset: TSval at 23.
        let ts = [1, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0];
        let mut b = segment(TcpFlags::SYN, 1000, 0, &ts);
        let adj = SeqAdjust { seq: 5, ts: Some(0xffff_fff0) };
        to_server(&mut b, adj, false);
        assert!(valid(&b));
        assert_eq!(be32(&b, 24), 1005);
        assert_eq!(be32(&b, 20 + 23), 100u32.wrapping_add(0xffff_fff0));
        assert_eq!(TcpPacket::new_checked(&b[20..]).unwrap().timestamp(), Some(84));
    }

    #[test]
    fn ack_sack_and_tsecr_move_back() {
        // NOP NOP TS(val 7, ecr 1005) NOP NOP SACK(1005-1010, 1020-1030)
        let mut opts = vec![1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0x03, 0xed, 1, 1, 5, 18];
        for v in [1005u32, 1010, 1020, 1030] {
            opts.extend(v.to_be_bytes());
        }
        let mut b = segment(TcpFlags::ACK, 9, 1005, &opts);
        to_client(&mut b, SeqAdjust { seq: 1000, ts: Some(1000) }, false);
        assert!(valid(&b));
        assert_eq!(be32(&b, 28), 5, "ack");
        assert_eq!(be32(&b, 40 + 8), 5, "TSecr");
        assert_eq!(be32(&b, 40 + 4), 7, "TSval is the server's own");
        let edges: Vec<u32> = (0..4).map(|i| be32(&b, 40 + 16 + 4 * i)).collect();
        assert_eq!(edges, [5, 10, 20, 30]);
        assert_eq!(be32(&b, 24), 9, "the server's seq stays");
    }

    #[test]
    fn partial_checksum_is_left_to_the_device() {
        let mut b = segment(TcpFlags::ACK, 1, 2, &[]);
        let field = [b[36], b[37]];
        to_server(&mut b, SeqAdjust { seq: 7, ts: None }, true);
        assert_eq!([b[36], b[37]], field);
        assert_eq!(be32(&b, 24), 8);
    }

    #[test]
    fn malformed_options_and_short_packets_are_left_alone() {
        let mut b = segment(TcpFlags::ACK, 1, 2, &[8, 40, 0, 0]);
        to_client(&mut b, SeqAdjust { seq: 1, ts: Some(1) }, false);
        assert!(valid(&b));
        for len in 0..b.len() {
            let mut short = b[..len].to_vec();
            to_client(&mut short, SeqAdjust { seq: 1, ts: Some(1) }, false);
            to_server(&mut short, SeqAdjust { seq: 1, ts: Some(1) }, false);
        }
    }
}
