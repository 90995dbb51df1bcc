//! The kernel's hash functions the hashing schedulers use, bit for bit, so
//! that the same client lands on the same real server as under kernel IPVS.

use std::net::IpAddr;

const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// hash_32(val, bits) from include/linux/hash.h.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// The address folded to 32 bits in host order, as `ntohl(addr_fold)`: an
/// IPv6 address is the XOR of its four 32-bit words.
pub fn fold(addr: &IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            // The XOR happens on network-order words, then ntohl: the same
            // as XOR-ing the host-order words.
            w(0) ^ w(4) ^ w(8) ^ w(12)
        }
    }
}

/// hsiphash of a 4-byte value on a 64-bit kernel, where it is SipHash-1-3
/// with a 128-bit key, truncated to 32 bits (lib/siphash.c).
pub fn hsiphash_u32(v: u32, key: [u64; 2]) -> u32 {
    let mut v0: u64 = 0x736f_6d65_7073_6575 ^ key[0];
    let mut v1: u64 = 0x646f_7261_6e64_6f6d ^ key[1];
    let mut v2: u64 = 0x6c79_6765_6e65_7261 ^ key[0];
    let mut v3: u64 = 0x7465_6462_7974_6573 ^ key[1];
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13);
        *v1 ^= *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16);
        *v3 ^= *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21);
        *v3 ^= *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17);
        *v1 ^= *v2;
        *v2 = v2.rotate_left(32);
    };
    // Four bytes: no full word, the tail goes into b with the length.
    let b: u64 = (4u64 << 56) | u64::from(v);
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    ((v0 ^ v1) ^ (v2 ^ v3)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_matches_the_kernel_definition() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(0x0a01_010a, 10), (0x0a01_010au32.wrapping_mul(0x61C8_8647)) >> 22);
    }

    #[test]
    fn fold_v6_xors_words() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(fold(&a), 0x2001_0db8 ^ 1);
    }
}
