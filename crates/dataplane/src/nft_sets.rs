//! Set elements of the nftables guard written over nfnetlink, in one
//! batch (one transaction) per change, instead of running `nft` for each:
//! a process per change cost 2.6 ms, which made a bulk load of 1,000
//! services on the AF_PACKET engine take six times as long as the table
//! alone (BENCHMARKS.md, "Bulk loads"). The table, chain and sets are
//! still created by `nft` once at start-up; only elements go this way.
//!
//! The messages are those nft itself sends: NFNL_MSG_BATCH_BEGIN, one
//! NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM per set, NFNL_MSG_BATCH_END,
//! each acknowledged. A concatenated key holds each field in a 4-byte
//! register of its own (an address, a protocol byte, a port in network
//! order), as nft lays it out.

use crate::filter::Rule;
use anyhow::{bail, Context, Result};
use netlink_sys::{Socket, SocketAddr};

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_NETDEV: u8 = 5;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_DATA_VALUE: u16 = 1;

/// A set element key as the kernel stores it.
fn key(r: Rule) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    match r.addr() {
        std::net::IpAddr::V4(a) => k.extend_from_slice(&a.octets()),
        std::net::IpAddr::V6(a) => k.extend_from_slice(&a.octets()),
    }
    match r {
        Rule::Service { protocol, port: 0, .. } => k.extend_from_slice(&[protocol.number(), 0, 0, 0]),
        Rule::Service { protocol, port, .. }
        | Rule::NatSource { protocol, port, .. }
        | Rule::FnatSource { protocol, port, .. } => {
            k.extend_from_slice(&[protocol.number(), 0, 0, 0]);
            k.extend_from_slice(&port.to_be_bytes());
            k.extend_from_slice(&[0, 0]);
        }
        Rule::Laddr(_) | Rule::Local(_) => {}
    }
    k
}

/// Appends a netlink attribute; `body` writes its payload.
fn attr(buf: &mut Vec<u8>, kind: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 4]);
    body(buf);
    let len = buf.len() - start;
    buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    buf[start + 2..start + 4].copy_from_slice(&kind.to_ne_bytes());
    buf.resize(buf.len().next_multiple_of(4), 0);
}

fn cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// Appends a netlink message with an nfgenmsg header; `body` writes its
/// attributes.
fn message(
    buf: &mut Vec<u8>,
    kind: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    body: impl FnOnce(&mut Vec<u8>),
) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 16]);
    buf.extend_from_slice(&[family, 0]);
    buf.extend_from_slice(&res_id.to_be_bytes());
    body(buf);
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    buf[start + 4..start + 6].copy_from_slice(&kind.to_ne_bytes());
    buf[start + 6..start + 8].copy_from_slice(&flags.to_ne_bytes());
    buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
}

pub struct SetWriter {
    sock: Socket,
    seq: u32,
}

impl SetWriter {
    pub fn new() -> Result<SetWriter> {
        let mut sock = Socket::new(NETLINK_NETFILTER).context("opening an nfnetlink socket")?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(SetWriter { sock, seq: 1 })
    }

    /// Deletes `removed` and adds `added` to the sets of `table` (netdev
    /// family), in one transaction: all of it happens or none does.
    pub fn apply(&mut self, table: &str, added: &[Rule], removed: &[Rule]) -> Result<()> {
        // One message per (operation, set); a message holds at most
        // 64 KiB of attributes, so large batches are split.
        let mut groups: Vec<(u16, String, Vec<Vec<u8>>)> = Vec::new();
        for (op, rules) in [(NFT_MSG_DELSETELEM, removed), (NFT_MSG_NEWSETELEM, added)] {
            for r in rules {
                let family = if r.addr().is_ipv6() { "6" } else { "4" };
                let set = format!("{}{family}", r.table().name());
                match groups.iter_mut().find(|g| g.0 == op && g.1 == set && g.2.len() < 1024) {
                    Some(g) => g.2.push(key(*r)),
                    None => groups.push((op, set, vec![key(*r)])),
                }
            }
        }
        if groups.is_empty() {
            return Ok(());
        }
        let first = self.seq;
        let mut buf = Vec::with_capacity(256);
        message(&mut buf, NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, self.next(), 0, NFNL_SUBSYS_NFTABLES, |_| {});
        for (op, set, keys) in &groups {
            let flags = NLM_F_REQUEST | NLM_F_ACK | if *op == NFT_MSG_NEWSETELEM { NLM_F_CREATE } else { 0 };
            let kind = (NFNL_SUBSYS_NFTABLES << 8) | op;
            let seq = self.next();
            message(&mut buf, kind, flags, seq, NFPROTO_NETDEV, 0, |b| {
                attr(b, NFTA_SET_ELEM_LIST_TABLE, |b| cstr(b, table));
                attr(b, NFTA_SET_ELEM_LIST_SET, |b| cstr(b, set));
                attr(b, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, |b| {
                    for k in keys {
                        attr(b, NFTA_LIST_ELEM | NLA_F_NESTED, |b| {
                            attr(b, NFTA_SET_ELEM_KEY | NLA_F_NESTED, |b| {
                                attr(b, NFTA_DATA_VALUE, |b| b.extend_from_slice(k));
                            });
                        });
                    }
                });
            });
        }
        message(&mut buf, NFNL_MSG_BATCH_END, NLM_F_REQUEST, self.next(), 0, NFNL_SUBSYS_NFTABLES, |_| {});
        self.sock.send(&buf, 0).context("sending to nfnetlink")?;
        // One acknowledgement per element message; an error may come
        // first and ends the transaction.
        let mut acked = 0;
        let mut rx = vec![0u8; 1 << 16];
        while acked < groups.len() {
            let n = self.sock.recv(&mut &mut rx[..], 0).context("reading nfnetlink's answer")?;
            let mut off = 0;
            while off + 16 <= n {
                let len = u32::from_ne_bytes(rx[off..off + 4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(rx[off + 4..off + 6].try_into().unwrap());
                let seq = u32::from_ne_bytes(rx[off + 8..off + 12].try_into().unwrap());
                if len < 16 || off + len > n {
                    break;
                }
                if kind == NLMSG_ERROR && seq >= first && off + 20 <= n {
                    let errno = -i32::from_ne_bytes(rx[off + 16..off + 20].try_into().unwrap());
                    if errno != 0 {
                        bail!("nfnetlink refused a set change: {}", std::io::Error::from_raw_os_error(errno));
                    }
                    acked += 1;
                }
                off += len.next_multiple_of(4);
            }
        }
        Ok(())
    }

    fn next(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlvs_lvs::Protocol;

    #[test]
    fn keys_hold_each_field_in_a_register_of_its_own() {
        let svc = Rule::Service { addr: "10.0.0.100".parse().unwrap(), protocol: Protocol::Tcp, port: 80 };
        assert_eq!(key(svc), [10, 0, 0, 100, 6, 0, 0, 0, 0, 80, 0, 0]);
        let any = Rule::Service { addr: "10.0.0.100".parse().unwrap(), protocol: Protocol::Udp, port: 0 };
        assert_eq!(key(any), [10, 0, 0, 100, 17, 0, 0, 0]);
        assert_eq!(key(Rule::Local("2001:db8::1".parse().unwrap())).len(), 16);
        let nat = Rule::NatSource { addr: "2001:db8::2".parse().unwrap(), protocol: Protocol::Tcp, port: 8080 };
        assert_eq!(key(nat)[16..], [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn a_message_is_padded_and_sized() {
        let mut b = Vec::new();
        message(&mut b, 1, NLM_F_REQUEST, 7, NFPROTO_NETDEV, 0, |b| attr(b, 1, |b| cstr(b, "rlvs")));
        // 16 header + 4 nfgenmsg + 4 attr header + "rlvs\0" padded to 8.
        assert_eq!(b.len(), 32);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 32);
        assert_eq!(u16::from_ne_bytes(b[20..22].try_into().unwrap()), 9, "attribute length excludes padding");
    }
}
