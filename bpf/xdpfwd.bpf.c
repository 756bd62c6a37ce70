// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Host NIC program: frames whose destination address is a service IP go to the ingress veth of
 * that service, everything else passes to the stack untouched.
 *
 *   Ethernet [802.1Q | 802.1ad/802.1Q + 802.1Q] IPv4|IPv6
 *     dst in services?  no  -> XDP_PASS, frame untouched
 *                       yes -> IP header consistent?  no  -> count malformed, XDP_DROP
 *                              yes -> bpf_redirect_map(ingress_devs, ifindex)
 *                                     failed -> count redirect_errors, XDP_DROP (frame untouched)
 *                                     ok     -> strip VLAN tags, set the veth MACs, XDP_REDIRECT
 *
 * Reads never go past data_end. Only the frame's consistency is checked here (header and total
 * lengths): checksums, TTL, fragments and protocols are the ingress inspector's business.
 * Frames too short to show their destination address cannot be known not to be ours, so they
 * pass (counted by reason). Nothing assumes headroom: the only head adjustment shrinks the frame,
 * which works in native and generic mode and with BPF_F_TEST_XDP_LIVE_FRAMES. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdpfwd_abi.h"

/* The uapi headers have no VLAN header: one 802.1Q/802.1ad tag after the MAC addresses. */
struct vlan_hdr {
	__be16 h_vlan_TCI;
	__be16 h_vlan_encapsulated_proto;
};

#define IPV4_VERSION 4
#define IPV4_MIN_IHL 5 /* in 32-bit words: the header without options */
#define IPV6_VERSION 6

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_MAX_SERVICE_IPS);
	__type(key, struct xdpfwd_service_key);
	__type(value, struct xdpfwd_service_value);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, XDPFWD_MAX_INGRESS_DEVS);
	__type(key, __u32); /* ifindex */
	__type(value, struct bpf_devmap_val);
} ingress_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_MAX_SERVICE_IPS);
	__type(key, __u32); /* xdpfwd_service_value.stats_index */
	__type(value, struct xdpfwd_service_stats);
} service_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_MALFORMED_REASONS);
	__type(key, __u32); /* enum xdpfwd_malformed_reason */
	__type(value, __u64);
} malformed SEC(".maps");

/* Parse position in the frame; every parse_* helper checks that its header lies before data_end
 * and only then advances pos past it. */
struct hdr_cursor {
	void *pos;
};

/* Returns the EtherType in network byte order, or -1 when the header is cut short. */
static __always_inline int parse_ethhdr(struct hdr_cursor *cur, void *data_end, struct ethhdr **ethhdr)
{
	struct ethhdr *eth = cur->pos;

	if ((void *)(eth + 1) > data_end)
		return -1;
	cur->pos = eth + 1;
	*ethhdr = eth;
	return eth->h_proto;
}

/* Both arguments and the result in network byte order. */
static __always_inline int proto_is_vlan(__be16 proto)
{
	return proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD);
}

/* Skips one VLAN tag. Returns the encapsulated EtherType in network byte order, or -1 when the
 * tag is cut short. */
static __always_inline int parse_vlan(struct hdr_cursor *cur, void *data_end)
{
	struct vlan_hdr *vlan = cur->pos;

	if ((void *)(vlan + 1) > data_end)
		return -1;
	cur->pos = vlan + 1;
	return vlan->h_vlan_encapsulated_proto;
}

/* Points *iphdr at the fixed IPv4 header and advances past it (not past options: their length
 * is only trusted after ipv4_malformed()). Returns 0, or -1 when the fixed header is cut short.
 * Header fields stay in network byte order. */
static __always_inline int parse_ipv4(struct hdr_cursor *cur, void *data_end, struct iphdr **iphdr)
{
	struct iphdr *iph = cur->pos;

	if ((void *)(iph + 1) > data_end)
		return -1;
	cur->pos = iph + 1;
	*iphdr = iph;
	return 0;
}

/* Points *ipv6hdr at the fixed IPv6 header and advances past it. Returns 0, or -1 when the
 * header is cut short. Header fields stay in network byte order. */
static __always_inline int parse_ipv6(struct hdr_cursor *cur, void *data_end, struct ipv6hdr **ipv6hdr)
{
	struct ipv6hdr *ip6h = cur->pos;

	if ((void *)(ip6h + 1) > data_end)
		return -1;
	cur->pos = ip6h + 1;
	*ipv6hdr = ip6h;
	return 0;
}

/* Whether an IPv4 header is consistent with itself and with the frame: returns 0, or the
 * malformed reason. The total length may be shorter than the frame (Ethernet padding). */
static __always_inline int ipv4_malformed(const struct iphdr *iph, void *data_end)
{
	__u32 header_len = iph->ihl * 4;
	__u32 available = data_end - (void *)iph;
	__u32 total_len = bpf_ntohs(iph->tot_len);

	if (iph->version != IPV4_VERSION || iph->ihl < IPV4_MIN_IHL || header_len > available)
		return XDPFWD_MALFORMED_IPV4_HEADER;
	if (total_len < header_len || total_len > available)
		return XDPFWD_MALFORMED_IPV4_LENGTH;
	return 0;
}

/* Same for IPv6; extension headers are not walked (the destination is in the fixed header). */
static __always_inline int ipv6_malformed(const struct ipv6hdr *ip6h, void *data_end)
{
	__u32 available = data_end - (void *)ip6h;

	if (ip6h->version != IPV6_VERSION)
		return XDPFWD_MALFORMED_IPV6_HEADER;
	if (sizeof(*ip6h) + bpf_ntohs(ip6h->payload_len) > available)
		return XDPFWD_MALFORMED_IPV6_LENGTH;
	return 0;
}

/* ::ffff:0:0/96; the address in network byte order. */
static __always_inline int ipv6_is_v4_mapped(const struct in6_addr *addr)
{
	return addr->in6_u.u6_addr32[0] == 0 && addr->in6_u.u6_addr32[1] == 0 &&
	       addr->in6_u.u6_addr32[2] == bpf_htonl(0x0000ffff);
}

static __always_inline void count_malformed(__u32 reason)
{
	__u64 *count = bpf_map_lookup_elem(&malformed, &reason);

	if (count)
		*count += 1;
}

/* The services key of an IPv4 destination: IPv4-mapped (::ffff:a.b.c.d), network byte order. */
static __always_inline void ipv4_key(struct xdpfwd_service_key *key, const struct iphdr *iph)
{
	__builtin_memset(key->addr, 0, 10);
	key->addr[10] = 0xff;
	key->addr[11] = 0xff;
	__builtin_memcpy(&key->addr[12], &iph->daddr, sizeof(iph->daddr));
}

/* Removes vlan_bytes of VLAN tags after the MAC addresses and writes a plain Ethernet header
 * with the service's MACs and l3_proto (network byte order). Returns 0, or -1 when the frame
 * could not be adjusted. All packet pointers of the caller are invalid afterwards. */
static __always_inline int rewrite_l2(struct xdp_md *ctx, __u32 vlan_bytes, __be16 l3_proto,
				      const struct xdpfwd_service_value *svc)
{
	struct ethhdr *eth;
	void *data_end;

	/* Dropping the first vlan_bytes leaves the innermost EtherType where h_proto goes; the MAC
	 * addresses are overwritten below anyway. */
	if (vlan_bytes && bpf_xdp_adjust_head(ctx, vlan_bytes) < 0)
		return -1;
	eth = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, svc->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, svc->src_mac, ETH_ALEN);
	eth->h_proto = l3_proto;
	return 0;
}

SEC("xdp")
int xdpfwd_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u64 frame_len = data_end - data;
	struct hdr_cursor cur = { .pos = data };
	struct xdpfwd_service_key key = {};
	struct xdpfwd_service_value *svc;
	struct xdpfwd_service_stats *stats;
	struct ethhdr *eth;
	struct iphdr *iph = NULL;
	struct ipv6hdr *ip6h = NULL;
	__u32 vlan_bytes = 0;
	int proto; /* EtherType, network byte order */
	int reason;
	int depth;

	proto = parse_ethhdr(&cur, data_end, &eth);
	if (proto < 0) {
		count_malformed(XDPFWD_MALFORMED_L2_TRUNCATED);
		return XDP_PASS;
	}
	for (depth = 0; depth < XDPFWD_MAX_VLAN_DEPTH; depth++) {
		if (!proto_is_vlan(proto))
			break;
		proto = parse_vlan(&cur, data_end);
		if (proto < 0) {
			count_malformed(XDPFWD_MALFORMED_L2_TRUNCATED);
			return XDP_PASS;
		}
		vlan_bytes += sizeof(struct vlan_hdr);
	}
	if (proto_is_vlan(proto)) {
		count_malformed(XDPFWD_MALFORMED_VLAN_TOO_DEEP);
		return XDP_PASS;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		if (parse_ipv4(&cur, data_end, &iph) < 0) {
			count_malformed(XDPFWD_MALFORMED_L3_TRUNCATED);
			return XDP_PASS;
		}
		ipv4_key(&key, iph);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ipv6(&cur, data_end, &ip6h) < 0) {
			count_malformed(XDPFWD_MALFORMED_L3_TRUNCATED);
			return XDP_PASS;
		}
		/* IPv4-mapped addresses never appear on the wire (RFC 4291 2.5.5.2); their keys are
		 * the IPv4 services', so such a frame must not be taken for one of them. */
		if (ipv6_is_v4_mapped(&ip6h->daddr))
			return XDP_PASS;
		__builtin_memcpy(key.addr, &ip6h->daddr, sizeof(key.addr));
	} else {
		return XDP_PASS; /* ARP (also for service IPs: the host answers it), LLDP, ... */
	}

	svc = bpf_map_lookup_elem(&services, &key);
	if (!svc)
		return XDP_PASS;
	stats = bpf_map_lookup_elem(&service_stats, &svc->stats_index);

	reason = iph ? ipv4_malformed(iph, data_end) : ip6h ? ipv6_malformed(ip6h, data_end) : 0;
	if (reason) {
		count_malformed(reason);
		if (stats)
			stats->malformed += 1;
		return XDP_DROP;
	}

	/* Decided before the frame is touched, so that a failure drops the frame as received. */
	if (bpf_redirect_map(&ingress_devs, svc->ifindex, 0) != XDP_REDIRECT ||
	    rewrite_l2(ctx, vlan_bytes, proto, svc) < 0) {
		if (stats)
			stats->redirect_errors += 1;
		return XDP_DROP;
	}
	if (stats) {
		stats->packets += 1;
		stats->bytes += frame_len;
	}
	return XDP_REDIRECT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
