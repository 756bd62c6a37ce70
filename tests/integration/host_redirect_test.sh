#!/usr/bin/env bash
# The host path end to end: xdpfwd in the lab's node1 with two ingresses, each with one replica
# on node2 behind its own overlay. Real traffic from the client must land in the right ingress
# (only that ingress's overlay reaches the replica that answers), traffic to node1's own address
# must still reach node1's stack, the per-service counters must equal what was sent, and after
# SIGTERM nothing the daemon created may remain.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${LAB_PEER:?}"

lab_init redir
lab_up
lab_remote_overlay 4101
lab_remote_overlay 4102
lab_replica r1 4101 10.201.0.11/24 fd00:201::11/64
lab_replica s1 4102 10.202.0.11/24

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0", "xdp_mode": "native" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "waf", "service_ips": [ "198.18.0.10", "fd00:18::10" ],
      "overlay": { "vni": 4101, "address": "10.201.0.1/24", "address6": "fd00:201::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "waf-a", "replicas": [ { "address": "10.201.0.11" }, { "address": "fd00:201::11" } ] } ] },
    { "name": "sia", "service_ips": [ "198.18.0.20" ],
      "overlay": { "vni": 4102, "address": "10.202.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "sia-a", "replicas": [ { "address": "10.202.0.11" } ] } ] }
  ]
}
EOF
lab_start_daemon "$config"

# Listeners: each ingress's replica, and node1 itself for the host's own traffic.
lab_bg r1 r1-udp "$LAB_PEER" udp-echo :: 7 --name waf-replica
lab_bg r1 r1-http "$LAB_PEER" http-serve :: 80 --name waf-replica
lab_bg s1 s1-udp "$LAB_PEER" udp-echo :: 7 --name sia-replica
lab_bg node1 node1-udp "$LAB_PEER" udp-echo :: 7 --name node1
for log in r1-udp r1-http s1-udp node1-udp; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

send() { lab_exec client "$LAB_PEER" udp-send "$@" --wait-ms 3000; }

out=$(send 198.18.0.10 7 --count 200)
lab_expect_match "200 datagrams to waf's IPv4 service IP all answered" "$out" "^sent 200 received 200$"
lab_expect_match "... by waf's replica, through the waf ingress" "$out" "^from waf-replica: 200$"

out=$(send fd00:18::10 7 --count 100)
lab_expect_match "100 datagrams to waf's IPv6 service IP all answered" "$out" "^sent 100 received 100$"
lab_expect_match "... by waf's replica over IPv6" "$out" "^from waf-replica: 100$"

out=$(send 198.18.0.20 7 --count 150)
lab_expect_match "150 datagrams to sia's service IP answered by sia's replica" "$out" "^from sia-replica: 150$"

out=$(send 198.18.1.1 7 --count 50)
lab_expect_match "traffic to node1's own address still reaches node1's stack" "$out" "^from node1: 50$"

# Counters, read from the pinned maps: exactly what was sent (no other frame targets these IPs).
counters=$(lab_exec node1 "$XDPFWD" --counters --config "$config")
lab_expect_match "waf 198.18.0.10 counted 200 packets, no errors" "$counters" \
  "^waf 198\.18\.0\.10 packets=200 bytes=[0-9]+ redirect_errors=0 malformed=0$"
lab_expect_match "waf fd00:18::10 counted 100 packets" "$counters" "^waf fd00:18::10 packets=100 "
lab_expect_match "sia 198.18.0.20 counted 150 packets" "$counters" "^sia 198\.18\.0\.20 packets=150 "
bytes=$(sed -nE 's/^waf 198\.18\.0\.10 packets=200 bytes=([0-9]+) .*/\1/p' <<<"$counters")
# 200 frames of 14 (Ethernet) + 20 (IPv4) + 8 (UDP) + 32 (payload) bytes.
lab_expect "waf 198.18.0.10 counted the bytes of whole frames" "$bytes" "$((200 * 74))"

# TCP: the replica sees the ingress's overlay address (client_ip nat).
out=$(lab_exec client curl -sS --max-time 5 http://198.18.0.10/ 2>&1 || true)
lab_expect_match "HTTP to waf's service IP answered by its replica, NAT'ed" "$out" "^waf-replica client=10\.201\.0\.1:"
out=$(lab_exec client curl -sS --max-time 5 "http://[fd00:18::10]/" 2>&1 || true)
lab_expect_match "HTTP over IPv6 to waf's service IP" "$out" "^waf-replica client=\[fd00:201::1\]:"

# What the daemon made exists while it runs ...
lab_expect_match "ingress namespaces exist" "$(ip netns list)" "^xdpfwd-waf( |$)"
lab_expect_match "XDP is attached to node1's eth0" "$(lab_exec node1 ip -o link show eth0)" "prog/xdp"

# ... and is gone after SIGTERM.
for pid in "${LAB_PIDS[@]}"; do lab_stop "$pid" 5 || true; done
LAB_PIDS=()
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
log=$(cat "$LAB_DIR/daemon.log")
lab_expect_match "the daemon logs the final counters" "$log" "ingress sia: service IP 198\.18\.0\.20: 150 packets"
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-(waf|sia)( |$)"
lab_expect_no_match "no xf-* veth remains in node1" "$(lab_exec node1 ip -o link show)" ": xf-"
lab_expect_no_match "no XDP remains on node1's eth0" "$(lab_exec node1 ip -o link show eth0)" "prog/xdp"
if [[ -e $LAB_PIN_DIR ]]; then lab_fail "the pin dir is removed" "$(ls "$LAB_PIN_DIR")"; else lab_pass "the pin dir is removed"; fi

lab_summary
