/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Constants and map values shared by the bench's BPF programs and xdpfwd-bench. */
#ifndef XDPFWD_BENCH_ABI_H
#define XDPFWD_BENCH_ABI_H

#include <linux/types.h>

/* 60 bytes in memory, 64 on a wire with the FCS: Ethernet 14 + IPv4 20 + UDP 8 + payload 18. */
#define BENCH_FRAME_LEN 60
#define BENCH_PAYLOAD_LEN (BENCH_FRAME_LEN - 14 - 20 - 8)

#define BENCH_MAX_DESTS 16384 /* entries of bench_redirect's dests map */

/* bench_redirect: where frames to one IPv4 destination go. */
struct bench_dest {
	__u32 ifindex; /* also the key in the devmap */
	__u8 dst_mac[6];
	__u8 src_mac[6];
};

#endif
