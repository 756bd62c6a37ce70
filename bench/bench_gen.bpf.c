// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The traffic generator: run through BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES on the client's
 * veth, every run writes one whole 60-byte Ethernet/IPv4/UDP frame (64 bytes on a wire with the
 * FCS) and returns XDP_TX, which sends it out of that veth to its peer (node1's "NIC").
 *
 * Live-frame pages are recycled without being re-initialised: whatever the path did to the
 * previous frame of this page (MAC rewrite, NAT) is still there. So nothing of the old content
 * is trusted; every byte up to BENCH_FRAME_LEN is written on every run.
 *
 * Flows (load-time settings):
 *   flows == 1      one flow: src_ip:src_port -> dst_ip:dst_port
 *   flows  > 1      src ports src_port .. src_port + flows - 1 in turn (round robin)
 *   flows == 0      ever-new flows: random source 198.19.x.y (the /16 of src_ip), random port */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "bench_abi.h"

const volatile __u8 dst_mac[ETH_ALEN];
const volatile __u8 src_mac[ETH_ALEN];
const volatile __u32 src_ip; /* host byte order */
const volatile __u32 dst_ip; /* host byte order */
const volatile __u16 src_port;
const volatile __u16 dst_port;
const volatile __u32 flows = 1;

__u32 next_flow; /* one generator thread: no atomics needed */

/* The IPv4 header checksum over the ten 16-bit words of a header without options. */
static __always_inline __u16 ipv4_csum(const struct iphdr *iph)
{
	const __u16 *word = (const __u16 *)iph;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int bench_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct udphdr *udp = (void *)(iph + 1);
	__u8 *payload = (void *)(udp + 1);
	__u32 saddr = src_ip;
	__u16 sport = src_port;
	int i;

	if (data + BENCH_FRAME_LEN > data_end)
		return XDP_ABORTED;

	if (flows == 0) {
		__u32 random = bpf_get_prandom_u32();

		saddr = (src_ip & 0xffff0000) | (random & 0xffff);
		sport = 1024 + ((random >> 16) % 64512);
	} else if (flows > 1) {
		sport = src_port + next_flow;
		if (++next_flow >= flows)
			next_flow = 0;
	}

	/* Byte by byte: a memcpy that casts volatile away lets clang fold the zero initialiser. */
#pragma unroll
	for (i = 0; i < ETH_ALEN; i++) {
		eth->h_dest[i] = dst_mac[i];
		eth->h_source[i] = src_mac[i];
	}
	eth->h_proto = bpf_htons(ETH_P_IP);

	iph->version = 4;
	iph->ihl = 5;
	iph->tos = 0;
	iph->tot_len = bpf_htons(BENCH_FRAME_LEN - sizeof(*eth));
	iph->id = 0;
	iph->frag_off = 0;
	iph->ttl = 64;
	iph->protocol = IPPROTO_UDP;
	iph->check = 0;
	iph->saddr = bpf_htonl(saddr);
	iph->daddr = bpf_htonl(dst_ip);
	iph->check = ipv4_csum(iph);

	udp->source = bpf_htons(sport);
	udp->dest = bpf_htons(dst_port);
	udp->len = bpf_htons(BENCH_FRAME_LEN - sizeof(*eth) - sizeof(*iph));
	udp->check = 0; /* optional for UDP over IPv4 */

#pragma unroll
	for (i = 0; i < BENCH_PAYLOAD_LEN; i++)
		payload[i] = 0;
	return XDP_TX;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
