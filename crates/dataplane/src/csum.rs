//! Checksums AF_XDP leaves to us. A frame that crossed veth from a local
//! stack may carry a CHECKSUM_PARTIAL TCP or UDP checksum: the field holds
//! only the pseudo-header sum, and the skb metadata that said so is gone by
//! the time XDP sees the bytes. AF_PACKET hands that metadata over in a
//! virtio-net header; here we recognise the pattern (the field equals the
//! folded pseudo-header sum, and the full sum does not verify) and write
//! the same virtio-net header, so the forwarding code treats both engines'
//! frames alike. On the way out, frames still marked NEEDS_CSUM get their
//! checksum finished in software, since an AF_XDP frame leaves as
//! CHECKSUM_NONE.

use rlvs_wire::checksum::{fold, sum};

pub const VNET_HDR_LEN: usize = 10;
pub const F_NEEDS_CSUM: u8 = 1;
const ETH_HLEN: usize = 14;

/// Where a partial checksum's sum starts and where its field is, counted
/// from the start of the frame, if `frame` carries one.
pub fn partial_checksum(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < ETH_HLEN + 20 {
        return None;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let l3 = &frame[ETH_HLEN..];
    let (l4_start, proto, l4_len, pseudo) = match ethertype {
        0x0800 => {
            let ihl = usize::from(l3[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([l3[2], l3[3]]));
            // Fragments never carry a partial checksum.
            if l3[0] >> 4 != 4
                || ihl < 20
                || total > l3.len()
                || total < ihl
                || u16::from_be_bytes([l3[6], l3[7]]) & 0x3fff != 0
            {
                return None;
            }
            let proto = l3[9];
            let l4_len = total - ihl;
            let pseudo = sum(&l3[12..20]) + u32::from(proto) + l4_len as u32;
            (ETH_HLEN + ihl, proto, l4_len, pseudo)
        }
        0x86dd => {
            if l3.len() < 40 {
                return None;
            }
            let l4_len = usize::from(u16::from_be_bytes([l3[4], l3[5]]));
            if 40 + l4_len > l3.len() {
                return None;
            }
            let proto = l3[6];
            let pseudo = sum(&l3[8..40]) + u32::from(proto) + l4_len as u32;
            (ETH_HLEN + 40, proto, l4_len, pseudo)
        }
        _ => return None,
    };
    let field = match proto {
        6 if l4_len >= 20 => 16,
        17 if l4_len >= 8 => 6,
        _ => return None,
    };
    let at = l4_start + field;
    let stored = u16::from_be_bytes([frame[at], frame[at + 1]]);
    if stored != fold(pseudo) {
        return None;
    }
    // A complete checksum equal to the pseudo-header sum by chance
    // verifies; a partial one does not.
    let full = fold(pseudo + sum(&frame[l4_start..l4_start + l4_len]));
    (full != 0xffff).then_some((l4_start as u16, field as u16))
}

/// Writes the virtio-net header AF_PACKET would have written for `frame`
/// into `hdr`: NEEDS_CSUM with its offsets when the checksum is partial.
pub fn fill_vnet_header(hdr: &mut [u8], frame: &[u8]) {
    hdr[..VNET_HDR_LEN].fill(0);
    if let Some((start, offset)) = partial_checksum(frame) {
        hdr[0] = F_NEEDS_CSUM;
        hdr[6..8].copy_from_slice(&start.to_le_bytes());
        hdr[8..10].copy_from_slice(&offset.to_le_bytes());
    }
}

/// Finishes a NEEDS_CSUM checksum in place, as skb_checksum_help does, and
/// clears the flag. The frame follows its virtio-net header.
pub fn complete(vnet_and_frame: &mut [u8]) {
    if vnet_and_frame.len() < VNET_HDR_LEN || vnet_and_frame[0] & F_NEEDS_CSUM == 0 {
        return;
    }
    let start = usize::from(u16::from_le_bytes([vnet_and_frame[6], vnet_and_frame[7]]));
    let offset = usize::from(u16::from_le_bytes([vnet_and_frame[8], vnet_and_frame[9]]));
    vnet_and_frame[0] &= !F_NEEDS_CSUM;
    let frame = &mut vnet_and_frame[VNET_HDR_LEN..];
    if start + offset + 2 > frame.len() {
        return;
    }
    // Up to the IP packet's end: an Ethernet frame may carry padding.
    let end = ip_end(frame).unwrap_or(frame.len()).min(frame.len());
    if start >= end {
        return;
    }
    let mut c = !fold(sum(&frame[start..end]));
    // UDP sends a computed zero as all ones (zero means "no checksum").
    if c == 0 && offset == 6 {
        c = 0xffff;
    }
    frame[start + offset..start + offset + 2].copy_from_slice(&c.to_be_bytes());
}

/// Where the IP packet in `frame` ends.
fn ip_end(frame: &[u8]) -> Option<usize> {
    let l3 = frame.get(ETH_HLEN..)?;
    match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 => Some(ETH_HLEN + usize::from(u16::from_be_bytes([*l3.get(2)?, *l3.get(3)?]))),
        0x86dd => Some(ETH_HLEN + 40 + usize::from(u16::from_be_bytes([*l3.get(4)?, *l3.get(5)?]))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TCP/IPv4 frame with a complete checksum.
    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12] = 0x08;
        let total = (40 + payload.len()) as u16;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[10, 1, 1, 10]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 100]);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x18;
        f.extend_from_slice(payload);
        let pseudo = sum(&f[26..34]) + 6 + u32::from(total - 20);
        let c = !fold(pseudo + sum(&f[34..]));
        f[50..52].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn a_complete_checksum_is_left_alone_and_a_partial_one_is_found_and_finished() {
        let good = tcp_frame(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(partial_checksum(&good), None);
        // What a local stack hands veth: the pseudo-header sum only.
        let mut partial = good.clone();
        let pseudo = fold(sum(&partial[26..34]) + 6 + (partial.len() - 34) as u32);
        partial[50..52].copy_from_slice(&pseudo.to_be_bytes());
        assert_eq!(partial_checksum(&partial), Some((34, 16)));
        let mut buf = vec![0u8; VNET_HDR_LEN];
        fill_vnet_header(&mut buf, &partial);
        buf.extend_from_slice(&partial);
        complete(&mut buf);
        assert_eq!(&buf[VNET_HDR_LEN..], &good[..]);
        assert_eq!(buf[0] & F_NEEDS_CSUM, 0);
    }

    #[test]
    fn a_corrupted_checksum_is_not_mistaken_for_a_partial_one() {
        let mut bad = tcp_frame(b"x");
        bad[50] ^= 0x55;
        assert_eq!(partial_checksum(&bad), None);
    }
}
