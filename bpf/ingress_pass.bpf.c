// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Runs on eth0 inside an ingress netns. A veth accepts XDP-redirected frames only when the
 * receiving side has an XDP program; this one hands every frame to the stack. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdpfwd_ingress_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
