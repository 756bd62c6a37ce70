// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Inside an ingress netns: the frames the ingress inspector handles go to its AF_XDP sockets,
 * everything else to the stack. Two XDP programs of one object, sharing the parse helpers and
 * maps, and two tc programs with the same classification for the AF_PACKET fallback (below).
 *
 * xdpfwd_ingress_client, on eth0 (native mode; the host redirects service traffic into the veth):
 *   Ethernet IPv4|IPv6, dst in local_service_ips?  no  -> XDP_PASS (ARP, other addresses, ...)
 *     ICMPv6 133-137 (router/neighbour discovery)       -> XDP_PASS (the kernel answers)
 *     TCP, dst port in stack_tcp_ports (first fragment)  -> XDP_PASS (terminated by the kernel)
 *     else -> bpf_redirect_map(client_xsks, rx queue, XDP_PASS): no socket bound -> XDP_PASS
 *
 * xdpfwd_ingress_overlay, on ovl0 (native mode on a veth, else generic), the replies of forwarded flows:
 *   dst in local_overlay_ips:
 *     TCP/UDP dst port in the NAT range, ICMP(v6) echo reply with its id in the NAT range,
 *     ICMP(v6) dest unreachable / packet too big / time exceeded, any fragment -> overlay_xsks
 *     else (health checks and other kernel sockets)                          -> XDP_PASS
 *   dst not local, unicast (Ethernet and IP), not link-local, to ovl0's MAC -> overlay_xsks
 *     (replies to clients when client_ip is preserve: replicas route them via the ingress)
 *   else (ARP, ND, multicast, ...)                                         -> XDP_PASS
 *
 * Fragments: the transport header is only in the first one, so all fragments of a datagram
 * addressed to a service IP or to a local overlay address go to the inspector (which applies
 * its fragments policy); the stack_tcp_ports exception needs the port and so does not apply to
 * fragments. Frames are never modified here, and the XDP programs drop none; reads never go past
 * data_end. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ingress_abi.h"

#define IPV4_VERSION 4
#define IPV4_MIN_IHL 5 /* in 32-bit words: the header without options */
#define IPV4_FRAG_OFFSET 0x1fff /* host byte order, of frag_off */
#define IPV4_MORE_FRAGMENTS 0x2000
#define IPV6_FRAG_OFFSET 0xfff8 /* host byte order, of frag_off in the fragment header */
#define PACKET_OTHERHOST 3 /* linux/if_packet.h: not for this host */
/* What the tc programs make linear before parsing: Ethernet, IPv6 with extension headers, ICMP. */
#define TC_PARSE_BYTES 192

/* ICMP and ICMPv6 types (linux/icmp.h pulls in libc headers, which a BPF target lacks). */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3 /* fragmentation needed included (code 4) */
#define ICMP_TIME_EXCEEDED 11
#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_PKT_TOOBIG 2
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_ECHO_REPLY 129
#define NDISC_ROUTER_SOLICITATION 133 /* through NDISC_REDIRECT: router/neighbour discovery */
#define NDISC_REDIRECT 137

/* The uapi headers of clang's target have no IPv6 extension or fragment header of their own. */
struct ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 (4-byte units minus 2 for AH) */
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* The first four bytes of TCP and UDP. */
struct l4_ports {
	__be16 source;
	__be16 dest;
};

/* ICMP and ICMPv6 share type, code, checksum and the echo id/sequence layout. */
struct icmp_any {
	__u8 type;
	__u8 code;
	__be16 checksum;
	__be16 echo_id;
	__be16 echo_sequence;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_INGRESS_MAX_SERVICE_IPS);
	__type(key, struct xdpfwd_ingress_ip_key);
	__type(value, struct xdpfwd_ingress_flag);
} local_service_ips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_INGRESS_MAX_STACK_PORTS);
	__type(key, __u16); /* TCP port, host byte order */
	__type(value, struct xdpfwd_ingress_flag);
} stack_tcp_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, XDPFWD_INGRESS_MAX_OVERLAY_IPS);
	__type(key, struct xdpfwd_ingress_ip_key);
	__type(value, struct xdpfwd_ingress_flag);
} local_overlay_ips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct xdpfwd_ingress_overlay_config);
} overlay_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XDPFWD_INGRESS_MAX_QUEUES);
	__type(key, __u32); /* rx queue index */
	__type(value, __u32); /* AF_XDP socket fd (user space writes it) */
} client_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, XDPFWD_INGRESS_MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} overlay_xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, XDPFWD_INGRESS_COUNTERS);
	__type(key, __u32); /* enum xdpfwd_ingress_counter */
	__type(value, __u64);
} counters SEC(".maps");

/* Parse position in the frame; every parse_* helper checks that its header lies before data_end
 * and only then advances pos past it. */
struct hdr_cursor {
	void *pos;
};

/* What the programs need to know of an IP packet. */
struct l3_info {
	struct xdpfwd_ingress_ip_key dst; /* network byte order, IPv4-mapped for IPv4 */
	__u8 l4_proto; /* IPPROTO_*, after the IPv6 extension headers */
	__u8 fragment; /* part of a fragmented datagram (first fragment included) */
	__u8 has_l4; /* the transport header starts at the cursor: not a later fragment */
	__u8 ipv6;
};

static __always_inline void count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &counter);

	if (value)
		*value += 1;
}

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

/* IPv4 header, options included. Returns 0, or -1 when it is cut short or not IPv4. */
static __always_inline int parse_ipv4(struct hdr_cursor *cur, void *data_end, struct l3_info *info)
{
	struct iphdr *iph = cur->pos;
	__u32 header_len;
	__u16 frag;

	if ((void *)(iph + 1) > data_end)
		return -1;
	header_len = iph->ihl * 4; /* at most 60: the verifier sees the bound */
	if (iph->version != IPV4_VERSION || iph->ihl < IPV4_MIN_IHL || (void *)iph + header_len > data_end)
		return -1;
	cur->pos = (void *)iph + header_len;

	__builtin_memset(info->dst.addr, 0, 10);
	info->dst.addr[10] = 0xff;
	info->dst.addr[11] = 0xff;
	__builtin_memcpy(&info->dst.addr[12], &iph->daddr, sizeof(iph->daddr));
	frag = bpf_ntohs(iph->frag_off);
	info->l4_proto = iph->protocol;
	info->fragment = (frag & (IPV4_FRAG_OFFSET | IPV4_MORE_FRAGMENTS)) != 0;
	info->has_l4 = (frag & IPV4_FRAG_OFFSET) == 0;
	info->ipv6 = 0;
	return 0;
}

static __always_inline int ipv6_is_ext(__u8 nexthdr)
{
	return nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS ||
	       nexthdr == IPPROTO_FRAGMENT || nexthdr == IPPROTO_AH;
}

/* IPv6 header and up to XDPFWD_INGRESS_MAX_IPV6_EXT extension headers. Returns 0, or -1 when a
 * header is cut short, the chain is longer, or the version is not 6. */
static __always_inline int parse_ipv6(struct hdr_cursor *cur, void *data_end, struct l3_info *info)
{
	struct ipv6hdr *ip6h = cur->pos;
	__u8 nexthdr;
	int i;

	if ((void *)(ip6h + 1) > data_end || ip6h->version != 6)
		return -1;
	cur->pos = ip6h + 1;
	__builtin_memcpy(info->dst.addr, &ip6h->daddr, sizeof(info->dst.addr));
	info->fragment = 0;
	info->has_l4 = 1;
	info->ipv6 = 1;
	nexthdr = ip6h->nexthdr;

	for (i = 0; i < XDPFWD_INGRESS_MAX_IPV6_EXT; i++) {
		if (!ipv6_is_ext(nexthdr))
			break;
		if (nexthdr == IPPROTO_FRAGMENT) {
			struct ipv6_frag_hdr *frag = cur->pos;

			if ((void *)(frag + 1) > data_end)
				return -1;
			cur->pos = frag + 1;
			info->fragment = 1;
			if (bpf_ntohs(frag->frag_off) & IPV6_FRAG_OFFSET)
				info->has_l4 = 0;
			nexthdr = frag->nexthdr;
		} else {
			struct ipv6_ext_hdr *ext = cur->pos;
			__u32 len;

			if ((void *)(ext + 1) > data_end)
				return -1;
			len = nexthdr == IPPROTO_AH ? (ext->hdrlen + 2) * 4 : (ext->hdrlen + 1) * 8;
			if (cur->pos + len > data_end)
				return -1;
			nexthdr = ext->nexthdr;
			cur->pos += len;
		}
		if (!info->has_l4)
			break; /* a later fragment: what follows is payload */
	}
	if (info->has_l4 && ipv6_is_ext(nexthdr))
		return -1;
	info->l4_proto = nexthdr;
	return 0;
}

static __always_inline int all_zero(const __u8 *bytes, int size)
{
	__u8 any = 0;
	int i;

	for (i = 0; i < size; i++)
		any |= bytes[i];
	return any == 0;
}

/* Ethernet then IPv4 or IPv6. Returns 0 with *info filled and the cursor at the transport
 * header, or -1 for anything else (non-IP, truncated, IPv4-mapped IPv6 destination). */
static __always_inline int parse_l3(struct hdr_cursor *cur, void *data_end, struct ethhdr **eth,
				    struct l3_info *info)
{
	int proto = parse_ethhdr(cur, data_end, eth);

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(cur, data_end, info);
	if (proto == bpf_htons(ETH_P_IPV6)) {
		if (parse_ipv6(cur, data_end, info) < 0)
			return -1;
		/* Never on the wire (RFC 4291 2.5.5.2), and it would match an IPv4 key. */
		if (info->dst.addr[10] == 0xff && info->dst.addr[11] == 0xff && all_zero(info->dst.addr, 10))
			return -1;
		return 0;
	}
	return -1;
}

/* TCP/UDP destination port in host byte order, or -1 when the ports are cut short. */
static __always_inline int parse_dest_port(struct hdr_cursor *cur, void *data_end)
{
	struct l4_ports *ports = cur->pos;

	if ((void *)(ports + 1) > data_end)
		return -1;
	return bpf_ntohs(ports->dest);
}

static __always_inline struct icmp_any *parse_icmp(struct hdr_cursor *cur, void *data_end)
{
	struct icmp_any *icmp = cur->pos;

	if ((void *)(icmp + 1) > data_end)
		return 0;
	return icmp;
}

/* Whether a frame from eth0 is the inspector's (1) or the stack's (0, *counter says why). */
static __always_inline int classify_client(void *data, void *data_end, __u32 *counter)
{
	struct hdr_cursor cur = { .pos = data };
	struct l3_info info = {};
	struct ethhdr *eth;

	if (parse_l3(&cur, data_end, &eth, &info) < 0 || !bpf_map_lookup_elem(&local_service_ips, &info.dst)) {
		*counter = XDPFWD_INGRESS_CLIENT_OTHER;
		return 0;
	}
	if (info.has_l4 && !info.fragment && info.l4_proto == IPPROTO_TCP) {
		__u16 port;
		int dport = parse_dest_port(&cur, data_end);

		port = dport;
		if (dport >= 0 && bpf_map_lookup_elem(&stack_tcp_ports, &port)) {
			*counter = XDPFWD_INGRESS_CLIENT_STACK_PORT;
			return 0;
		}
	}
	if (info.has_l4 && info.l4_proto == IPPROTO_ICMPV6) {
		struct icmp_any *icmp = parse_icmp(&cur, data_end);

		if (icmp && icmp->type >= NDISC_ROUTER_SOLICITATION && icmp->type <= NDISC_REDIRECT) {
			*counter = XDPFWD_INGRESS_CLIENT_NEIGHBOR;
			return 0;
		}
	}
	*counter = XDPFWD_INGRESS_CLIENT_REDIRECTED;
	return 1;
}

SEC("xdp")
int xdpfwd_ingress_client(struct xdp_md *ctx)
{
	__u32 counter;
	long verdict;

	if (!classify_client((void *)(long)ctx->data, (void *)(long)ctx->data_end, &counter)) {
		count(counter);
		return XDP_PASS;
	}
	verdict = bpf_redirect_map(&client_xsks, ctx->rx_queue_index, XDP_PASS);
	count(verdict == XDP_REDIRECT ? counter : XDPFWD_INGRESS_CLIENT_NO_SOCKET);
	return verdict;
}

static __always_inline int in_nat_range(const struct xdpfwd_ingress_overlay_config *config, int value)
{
	return value >= config->nat_port_min && value <= config->nat_port_max;
}

/* Whether a frame to a local overlay address belongs to a flow the ingress forwards. */
static __always_inline int is_overlay_reply(struct hdr_cursor *cur, void *data_end, const struct l3_info *info,
					    const struct xdpfwd_ingress_overlay_config *config)
{
	struct icmp_any *icmp;

	if (info->fragment)
		return 1;
	switch (info->l4_proto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		return in_nat_range(config, parse_dest_port(cur, data_end));
	case IPPROTO_ICMP:
		if (info->ipv6 || !(icmp = parse_icmp(cur, data_end)))
			return 0;
		if (icmp->type == ICMP_ECHOREPLY)
			return in_nat_range(config, bpf_ntohs(icmp->echo_id));
		return icmp->type == ICMP_DEST_UNREACH || icmp->type == ICMP_TIME_EXCEEDED;
	case IPPROTO_ICMPV6:
		if (!info->ipv6 || !(icmp = parse_icmp(cur, data_end)))
			return 0;
		if (icmp->type == ICMPV6_ECHO_REPLY)
			return in_nat_range(config, bpf_ntohs(icmp->echo_id));
		return icmp->type == ICMPV6_DEST_UNREACH || icmp->type == ICMPV6_PKT_TOOBIG ||
		       icmp->type == ICMPV6_TIME_EXCEED;
	}
	return 0;
}

/* Whether a destination that is not local may be routed on by the ingress: unicast, not
 * link-local, not loopback, not unspecified. The address in network byte order. */
static __always_inline int is_transit_unicast(const struct l3_info *info)
{
	const __u8 *a = info->dst.addr;

	if (!info->ipv6) {
		/* 0/8, 127/8, 169.254/16, 224/4 (multicast), 240/4 (reserved, broadcast). */
		return a[12] != 0 && a[12] != 127 && !(a[12] == 169 && a[13] == 254) && a[12] < 224;
	}
	if (a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return 0; /* multicast, link-local */
	return !(all_zero(a, 15) && a[15] <= 1); /* ::, ::1 */
}

static __always_inline int mac_matches(const __u8 *frame_mac, const __u8 *config_mac)
{
	int any = 0, i;

	for (i = 0; i < ETH_ALEN; i++)
		any |= config_mac[i];
	if (!any)
		return 1;
	for (i = 0; i < ETH_ALEN; i++)
		if (frame_mac[i] != config_mac[i])
			return 0;
	return 1;
}

/* Whether a frame from ovl0 is the inspector's (1, *counter: reply or transit) or the stack's
 * (0, *counter says why). */
static __always_inline int classify_overlay(void *data, void *data_end, __u32 *counter)
{
	struct hdr_cursor cur = { .pos = data };
	const struct xdpfwd_ingress_overlay_config *config;
	struct l3_info info = {};
	struct ethhdr *eth;
	__u32 zero = 0;

	config = bpf_map_lookup_elem(&overlay_config, &zero);
	if (!config || parse_l3(&cur, data_end, &eth, &info) < 0) {
		*counter = XDPFWD_INGRESS_OVERLAY_OTHER;
		return 0;
	}
	if (bpf_map_lookup_elem(&local_overlay_ips, &info.dst)) {
		if (!is_overlay_reply(&cur, data_end, &info, config)) {
			*counter = XDPFWD_INGRESS_OVERLAY_LOCAL;
			return 0;
		}
		*counter = XDPFWD_INGRESS_OVERLAY_REPLY;
		return 1;
	}
	if ((eth->h_dest[0] & 1) || !mac_matches(eth->h_dest, config->mac) || !is_transit_unicast(&info)) {
		*counter = XDPFWD_INGRESS_OVERLAY_OTHER;
		return 0;
	}
	*counter = XDPFWD_INGRESS_OVERLAY_TRANSIT;
	return 1;
}

SEC("xdp")
int xdpfwd_ingress_overlay(struct xdp_md *ctx)
{
	__u32 counter;
	long verdict;

	if (!classify_overlay((void *)(long)ctx->data, (void *)(long)ctx->data_end, &counter)) {
		count(counter);
		return XDP_PASS;
	}
	verdict = bpf_redirect_map(&overlay_xsks, ctx->rx_queue_index, XDP_PASS);
	count(verdict == XDP_REDIRECT ? counter : XDPFWD_INGRESS_OVERLAY_NO_SOCKET);
	return verdict;
}

/* The AF_PACKET fallback (no AF_XDP socket): the XDP programs above pass every frame, and these
 * tc ingress programs, same classification, mark the inspector's frames for its packet sockets
 * (their filter accepts XDPFWD_INGRESS_INSPECTOR_MARK only) and make them PACKET_OTHERHOST, which
 * the IP stack drops: the kernel neither answers nor routes what the inspector handles. Sockets
 * bound to an EtherType are served after tc ingress, so they see both. */
static __always_inline int to_packet_socket(struct __sk_buff *skb, __u32 counter)
{
	skb->mark = XDPFWD_INGRESS_INSPECTOR_MARK;
	if (bpf_skb_change_type(skb, PACKET_OTHERHOST) < 0)
		return TC_ACT_SHOT; /* not for a received frame; dropped rather than answered by the stack */
	count(counter);
	return TC_ACT_OK;
}

/* Headers the classification reads must be in the linear part of the skb (cheap when they are:
 * only a cloned skb, e.g. with a packet capture running, gets its head copied). */
static __always_inline void pull_headers(struct __sk_buff *skb)
{
	if ((void *)(long)skb->data + TC_PARSE_BYTES > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < TC_PARSE_BYTES ? skb->len : TC_PARSE_BYTES);
}

SEC("tc")
int xdpfwd_ingress_client_tc(struct __sk_buff *skb)
{
	__u32 counter;

	pull_headers(skb);
	if (!classify_client((void *)(long)skb->data, (void *)(long)skb->data_end, &counter))
		return TC_ACT_OK;
	return to_packet_socket(skb, XDPFWD_INGRESS_CLIENT_PACKET_SOCKET);
}

SEC("tc")
int xdpfwd_ingress_overlay_tc(struct __sk_buff *skb)
{
	__u32 counter;

	pull_headers(skb);
	if (!classify_overlay((void *)(long)skb->data, (void *)(long)skb->data_end, &counter))
		return TC_ACT_OK;
	return to_packet_socket(skb, XDPFWD_INGRESS_OVERLAY_PACKET_SOCKET);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
