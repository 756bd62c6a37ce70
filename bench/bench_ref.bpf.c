// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The references and probes of the bench, one object, each program with its own counter map
 * (a program is loaded from its own skeleton instance, so the maps are never shared):
 *
 *   bench_count_drop  counts every frame and drops it: "frames dropped on arrival" (the
 *                     generator's ceiling) on node1's NIC
 *   bench_count_udp   counts and drops UDP/IPv4 frames to probe_port, passes everything else (ARP,
 *                     health checks): the delivery probe at the far end of a path (eth0 in the
 *                     ingress netns, a replica's eth0)
 *   bench_count_pass  counts every frame and passes it: node1's NIC for the kernel paths (a veth
 *                     accepts XDP_TX'd frames only when its receiving end runs XDP)
 *   bench_redirect    the minimal redirect by destination: Ethernet + IPv4, the destination looked
 *                     up in a hash map, MACs rewritten, bpf_redirect_map; the ceiling for xdpfwd's
 *                     job (no VLAN, no IPv6, no consistency checks, no per-service counters) */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bench_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BENCH_MAX_DESTS);
	__type(key, __u32); /* IPv4 destination, network byte order */
	__type(value, struct bench_dest);
} dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
} devs SEC(".maps");

static __always_inline void count(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&frames, &zero);

	if (n)
		*n += 1;
}

SEC("xdp")
int bench_count_drop(struct xdp_md *ctx)
{
	count();
	return XDP_DROP;
}

const volatile __u16 probe_port = 9; /* the generator's destination port */

SEC("xdp")
int bench_count_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *udp = (void *)(iph + 1); /* no IP options in the generator's frames */

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl != 5 ||
	    iph->protocol != IPPROTO_UDP || udp->dest != bpf_htons(probe_port))
		return XDP_PASS;
	count();
	return XDP_DROP;
}

SEC("xdp")
int bench_count_pass(struct xdp_md *ctx)
{
	count();
	return XDP_PASS;
}

SEC("xdp")
int bench_redirect(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct bench_dest *dest;

	if ((void *)(iph + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	dest = bpf_map_lookup_elem(&dests, &iph->daddr);
	if (!dest)
		return XDP_PASS;
	__builtin_memcpy(eth->h_dest, dest->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, dest->src_mac, ETH_ALEN);
	return bpf_redirect_map(&devs, dest->ifindex, XDP_DROP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
