/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map keys, values and constants of the host XDP program, shared by bpf/ and the C++ code.
 * One definition only: C++ static_asserts the sizes and the loader checks them against the
 * maps' info. Every field is in host byte order unless its comment says otherwise. */
#ifndef XDPFWD_ABI_H
#define XDPFWD_ABI_H

#include <linux/types.h>

#define XDPFWD_MAX_SERVICE_IPS 4096 /* entries of the services map and of service_stats */
#define XDPFWD_MAX_INGRESS_DEVS 1024 /* entries of the ingress_devs devmap */
#define XDPFWD_MAX_VLAN_DEPTH 2 /* 802.1Q, or QinQ (802.1ad outer + 802.1Q inner) */

/* Key of the services map: the destination address in network byte order; an IPv4 address is
 * stored IPv4-mapped (::ffff:a.b.c.d), so one map holds both families. */
struct xdpfwd_service_key {
	__u8 addr[16];
};

/* Where the frames to one service IP go. */
struct xdpfwd_service_value {
	__u32 ifindex; /* host side of the ingress veth; also its key in ingress_devs */
	__u32 stats_index; /* slot of this service IP in service_stats */
	__u8 dst_mac[6]; /* container side of the veth (eth0 in the ingress netns) */
	__u8 src_mac[6]; /* host side of the veth */
};

/* Per-CPU counters of one service IP (service_stats, indexed by stats_index). */
struct xdpfwd_service_stats {
	__u64 packets; /* redirected towards the ingress */
	__u64 bytes; /* of those, whole frames as received, VLAN tags included */
	__u64 redirect_errors; /* not redirected (the ingress veth missing from ingress_devs): dropped */
	__u64 malformed; /* addressed to this service IP but malformed: dropped */
};

/* Why a frame was counted in the per-CPU array "malformed" (XDPFWD_MALFORMED_REASONS entries
 * of __u64). Frames whose destination address cannot be read are passed to the stack untouched
 * (they may not be ours); frames that are addressed to a service IP but whose IP header is
 * inconsistent with itself or with the frame are dropped, and also counted in the service's
 * malformed counter. Only consistency is checked here: checksums, TTL, fragments, protocols and
 * the like are the ingress inspector's business. New reasons are only ever appended. */
enum xdpfwd_malformed_reason {
	XDPFWD_MALFORMED_L2_TRUNCATED = 0, /* Ethernet or VLAN header cut short: passed */
	XDPFWD_MALFORMED_VLAN_TOO_DEEP, /* more than XDPFWD_MAX_VLAN_DEPTH tags: passed */
	XDPFWD_MALFORMED_L3_TRUNCATED, /* fixed IPv4/IPv6 header cut short (so its destination): passed */
	XDPFWD_MALFORMED_IPV4_HEADER, /* service IP, version not 4, IHL < 5, options cut short: dropped */
	XDPFWD_MALFORMED_IPV4_LENGTH, /* service IP, total length beyond the frame or < IHL * 4: dropped */
	XDPFWD_MALFORMED_IPV6_LENGTH, /* service IP, payload length beyond the frame: dropped */
	XDPFWD_MALFORMED_IPV6_HEADER, /* service IP, version not 6: dropped */
	XDPFWD_MALFORMED_REASONS,
};

#endif
