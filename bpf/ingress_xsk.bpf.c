// placeholder, replaced by its owner
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
SEC("xdp") int xdpfwd_ingress_xsk(struct xdp_md *ctx) { return XDP_PASS; }
char LICENSE[] SEC("license") = "Dual BSD/GPL";
