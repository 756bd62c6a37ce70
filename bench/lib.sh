# Topology helpers of bench/run on top of tests/lab/lab.sh (sourced after it).
#
#   bench_host_ingress: an ingress netns of the bench's own ($LAB-ingress) behind node1, for the
#   host-path rows: the same shape as the one xdpfwd makes (a veth xf-in in node1, eth0 inside),
#   plus what the kernel paths need in node1 (forwarding, a route to the service IP, a route back
#   to the random sources). eth0 in the ingress answers nothing: the probe counts and drops the
#   generator's frames, so node1 gets a permanent neighbour entry for it.
#
#     node1 xf-in 198.18.3.1/24 ── eth0 198.18.3.2/24 (+ service IP 198.18.0.10/32) $LAB-ingress
BENCH_SERVICE_IP=198.18.0.10
BENCH_INGRESS_IP=198.18.3.2

bench_host_ingress() {
  local node1 ingress mac
  node1=$(lab_ns node1) ingress=$(lab_ns ingress)
  ip netns add "$ingress"
  ip -n "$node1" link add xf-in type veth peer name eth0 netns "$ingress"
  ip -n "$ingress" link set lo up
  ip -n "$ingress" addr add "$BENCH_INGRESS_IP/24" dev eth0
  ip -n "$ingress" addr add "$BENCH_SERVICE_IP/32" dev eth0
  ip -n "$ingress" link set eth0 up
  ip -n "$node1" addr add 198.18.3.1/24 dev xf-in
  ip -n "$node1" link set xf-in up
  mac=$(ip -n "$ingress" -j link show eth0 | jq -r '.[0].address')
  ip -n "$node1" neigh replace "$BENCH_INGRESS_IP" lladdr "$mac" dev xf-in nud permanent
  ip -n "$node1" route add "$BENCH_SERVICE_IP/32" via "$BENCH_INGRESS_IP" dev xf-in
  ip -n "$node1" route add 198.19.0.0/16 via 198.18.1.2 dev eth0
  lab_exec node1 sysctl -qw net.ipv4.ip_forward=1
  # Replies of the random-source flood would go nowhere anyway; no rp_filter drops either way.
  lab_exec node1 sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
}

# bench_nft_dnat RULES: node1's host stack DNATs the service IP to the ingress address, behind
# RULES-1 non-matching rules (other service IPs, as a DNAT chain of many services has them).
bench_nft_dnat() {
  local rules=$1 i
  {
    echo "table ip bench {"
    echo "  chain prerouting {"
    echo "    type nat hook prerouting priority dstnat; policy accept;"
    for ((i = 1; i < rules; i++)); do
      echo "    ip daddr 198.19.$((200 + i / 250)).$((i % 250 + 1)) udp dport 9 dnat to $BENCH_INGRESS_IP"
    done
    echo "    ip daddr $BENCH_SERVICE_IP udp dport 9 dnat to $BENCH_INGRESS_IP"
    echo "  }"
    echo "}"
  } >"$LAB_DIR/dnat.nft"
  lab_exec node1 nft -f "$LAB_DIR/dnat.nft"
}

bench_nft_clear() {
  lab_exec node1 nft delete table ip bench 2>/dev/null || true
  lab_exec node1 conntrack -F >/dev/null 2>&1 || true
}

# bench_kernel_ingress: the kernel doing the ingress's job, for the end-to-end rows. Like the
# daemon's static runtime (a veth into an ingress netns, a host route for the service IP, the
# ingress's own VXLAN made in node1 and moved in), but the forwarding is nftables: DNAT of the
# service IP to the replicas (a new flow takes the next replica; conntrack keeps it there) and
# masquerade out of the overlay, conntrack translating the replies back.
#
#   node1 kx-in 198.18.4.1/24 ── eth0 198.18.4.2/24 + 198.18.0.20/32  $LAB-kin
#   $LAB-kin ovl0 (VXLAN 4102 over node1's u0) 10.202.0.1/24 ── replicas k1 k2 on node2
BENCH_KERNEL_SERVICE_IP=198.18.0.20

bench_kernel_ingress() {
  local node1 kin
  node1=$(lab_ns node1) kin=$(lab_ns kin)
  ip netns add "$kin"
  ip -n "$node1" link add kx-in type veth peer name eth0 netns "$kin"
  ip -n "$kin" link set lo up
  ip -n "$kin" addr add 198.18.4.2/24 dev eth0
  ip -n "$kin" addr add "$BENCH_KERNEL_SERVICE_IP/32" dev eth0
  ip -n "$kin" link set eth0 up
  ip -n "$kin" route add default via 198.18.4.1
  ip -n "$node1" addr add 198.18.4.1/24 dev kx-in
  ip -n "$node1" link set kx-in up
  ip -n "$node1" route add "$BENCH_KERNEL_SERVICE_IP/32" via 198.18.4.2 dev kx-in
  lab_exec node1 sysctl -qw net.ipv4.ip_forward=1
  ip -n "$node1" link add kovl type vxlan id 4102 local 198.18.2.1 dstport 4789 dev u0
  ip -n "$node1" link set kovl netns "$kin"
  ip -n "$kin" link set kovl name ovl0
  lab_exec kin bridge fdb append 00:00:00:00:00:00 dev ovl0 dst 198.18.2.2
  ip -n "$kin" addr add 10.202.0.1/24 dev ovl0
  ip -n "$kin" link set ovl0 up
  lab_exec kin sysctl -qw net.ipv4.ip_forward=1
  lab_exec kin nft -f - <<NFT
table ip ingress {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr $BENCH_KERNEL_SERVICE_IP dnat to numgen inc mod 2 map { 0 : 10.202.0.11, 1 : 10.202.0.12 }
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "ovl0" masquerade
  }
}
NFT
}
