// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Frames the host program redirected that the ingress veth did not take. The kernel acts on
 * XDP_REDIRECT after the program has returned, so a refusal reaches no counter of the program's;
 * it is reported only through tracepoints, counted here per ingress veth (ifindex):
 *   xdp_redirect_err  the redirect into ingress_devs failed (a veth takes redirects only while
 *                     its peer runs an XDP program): filtered by the map's id;
 *   xdp_devmap_xmit   the devmap's bulk transmit failed (the peer is down): filtered by the
 *                     receiving device's network namespace, since ifindexes repeat across them.
 * Both filters are set before load. */
#include <linux/bpf.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "xdpfwd_abi.h"

/* The kernel's types, reduced to the fields read here; CO-RE finds their offsets in its BTF. */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

const volatile __u32 netns_inum = 0;
const volatile __u32 ingress_devs_map_id = 0;

/* Key: the receiving device's ifindex; value: frames it refused. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, XDPFWD_MAX_INGRESS_DEVS);
	__type(key, __u32);
	__type(value, __u64);
} redirect_drops SEC(".maps");

static void count(__u32 ifindex, __u64 frames)
{
	__u64 *counted = bpf_map_lookup_elem(&redirect_drops, &ifindex);
	if (counted)
		*counted += frames;
	else /* per-CPU: this writes only this CPU's slot, so a race with another CPU loses nothing */
		bpf_map_update_elem(&redirect_drops, &ifindex, &frames, BPF_ANY);
}

/* xdp_redirect_err(dev, xdp_prog, target, err, map_type, map_id, index) */
SEC("tp_btf/xdp_redirect_err")
int count_redirect_errors(__u64 *ctx)
{
	if ((__u32)ctx[5] == ingress_devs_map_id)
		count((__u32)ctx[6], 1);
	return 0;
}

/* xdp_devmap_xmit(from_dev, to_dev, sent, drops, err) */
SEC("tp_btf/xdp_devmap_xmit")
int count_xmit_drops(__u64 *ctx)
{
	const struct net_device *to_dev = (const struct net_device *)ctx[1];
	const int drops = (int)ctx[3];

	if (drops > 0 && BPF_CORE_READ(to_dev, nd_net.net, ns.inum) == netns_inum)
		count(BPF_CORE_READ(to_dev, ifindex), (__u64)drops);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
