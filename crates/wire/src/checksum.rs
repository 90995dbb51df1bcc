//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::Ipv4Addr;

/// One's-complement sum of `data` folded into 32 bits (not yet complemented).
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Summing 16-bit words in a 64-bit accumulator and folding later is
        // the same arithmetic as word-by-word, only fewer carries to handle.
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let rest = chunks.remainder();
    let mut words = rest.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    while acc > 0xffff_ffff {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Folds a 32-bit partial sum into 16 bits.
pub fn fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum field value for `data` (complement of the folded sum).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header used by TCP and UDP.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, l4_len: u16) -> u32 {
    sum(&src.octets()) + sum(&dst.octets()) + u32::from(protocol) + u32::from(l4_len)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit field changed from `old`
/// to `new`, without touching the rest of the data.
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// As [`update16`], for a 32-bit field such as an IPv4 address.
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    let s =
        u32::from(!check) + u32::from(!(old >> 16) as u16) + u32::from(!(old as u16)) + (new >> 16) + (new & 0xffff);
    !fold(s)
}

/// As [`update16`] for a changed run of bytes: `old` and `new` are the same
/// region before and after, starting at an even offset of the checksummed
/// data (widen an odd-aligned field by a byte to get there).
pub fn update_region(check: u16, old: &[u8], new: &[u8]) -> u16 {
    debug_assert_eq!(old.len(), new.len());
    let s = u32::from(!check) + u32::from(!fold(sum(old))) + u32::from(fold(sum(new)));
    !fold(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // The worked example of RFC 1071 section 3: the sum is 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(sum(&[0xab]), 0xab00);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn incremental_matches_full_recompute() {
        let mut data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        let before = checksum(&data);
        let old = u32::from_be_bytes([data[12], data[13], data[14], data[15]]);
        let new: u32 = 0x0a01_01f4;
        data[12..16].copy_from_slice(&new.to_be_bytes());
        let after_addr = update32(before, old, new);
        assert_eq!(after_addr, checksum(&data));
        let old16 = u16::from_be_bytes([data[20], data[21]]);
        data[20..22].copy_from_slice(&80u16.to_be_bytes());
        assert_eq!(update16(after_addr, old16, 80), checksum(&data));
    }

    #[test]
    fn verifying_a_correct_checksum_gives_zero() {
        let mut data = vec![0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let c = checksum(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn region_update_matches_a_full_recompute() {
        let mut data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let before = checksum(&data);
        // An odd-aligned 4-byte field, widened to the even region 9..15.
        let old = data[8..14].to_vec();
        data[9..13].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(update_region(before, &old, &data[8..14]), checksum(&data));
    }
}
