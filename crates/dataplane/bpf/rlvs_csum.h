// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// Internet checksum arithmetic for the fast path (RFC 1071, RFC 1624).
// Sums run over 16-bit words as they lie in memory; one's complement
// addition does not care about byte order as long as every word is read
// the same way.

#ifndef RLVS_CSUM_H
#define RLVS_CSUM_H

#include <linux/types.h>

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

// Adds the 16-bit words of an aligned field of `words` words.
static __always_inline __u64 csum_words(const __u16 *p, int words)
{
	__u64 s = 0;
#pragma unroll
	for (int i = 0; i < words; i++)
		s += p[i];
	return s;
}

// A checksum field after `words` 16-bit words changed from `old` to `new`
// (RFC 1624: HC' = ~(~HC + ~m + m')).
static __always_inline __u16 csum_replace(__u16 check, const __u16 *old, const __u16 *new, int words)
{
	__u64 s = (__u16)~check;
#pragma unroll
	for (int i = 0; i < words; i++)
		s += (__u16)~old[i] + (__u64)new[i];
	return ~csum_fold(s);
}

static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	return csum_replace(check, &old, &new, 1);
}

static __always_inline __u16 csum_replace32(__u16 check, __u32 old, __u32 new)
{
	return csum_replace(check, (__u16 *)&old, (__u16 *)&new, 2);
}

#endif
