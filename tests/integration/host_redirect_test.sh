#!/usr/bin/env bash
# The host path end to end: xdpfwd in the lab's node1 with two ingresses. Real traffic from the
# client must land in the right ingress netns, traffic to node1's own address must still reach
# node1's stack, the per-service counters must equal what was sent, and after SIGTERM nothing the
# daemon created may remain.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${LAB_PEER:?}"

lab_init redir
lab_up

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0", "xdp_mode": "native" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "ingresses": [
    { "name": "waf", "service_ips": [ "198.18.0.10", "fd00:18::10" ],
      "overlay": { "vni": 4101, "address": "10.201.0.1/24" },
      "services": [ { "name": "waf-a", "replicas": [ { "address": "10.201.0.11" } ] } ] },
    { "name": "sia", "service_ips": [ "198.18.0.20" ],
      "overlay": { "vni": 4102, "address": "10.202.0.1/24" },
      "services": [ { "name": "sia-a", "replicas": [ { "address": "10.202.0.11" } ] } ] }
  ]
}
EOF
lab_start_daemon "$config"

# Listeners: one per ingress netns, and one on node1 itself for the host's own traffic.
lab_bg xdpfwd-waf waf-udp "$LAB_PEER" udp-echo :: 7 --name waf
lab_bg xdpfwd-waf waf-http "$LAB_PEER" http-serve :: 80 --name waf
lab_bg xdpfwd-sia sia-udp "$LAB_PEER" udp-echo :: 7 --name sia
lab_bg node1 node1-udp "$LAB_PEER" udp-echo :: 7 --name node1
for log in waf-udp waf-http sia-udp node1-udp; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

send() { lab_exec client "$LAB_PEER" udp-send "$@" --wait-ms 3000; }

out=$(send 198.18.0.10 7 --count 200)
lab_expect_match "200 datagrams to waf's IPv4 service IP all answered" "$out" "^sent 200 received 200$"
lab_expect_match "... and answered from the waf ingress netns" "$out" "^from waf: 200$"

out=$(send fd00:18::10 7 --count 100)
lab_expect_match "100 datagrams to waf's IPv6 service IP all answered" "$out" "^sent 100 received 100$"
lab_expect_match "... from the waf ingress netns" "$out" "^from waf: 100$"

out=$(send 198.18.0.20 7 --count 150)
lab_expect_match "150 datagrams to sia's service IP answered from the sia ingress" "$out" "^from sia: 150$"

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

# TCP through the redirect: the ingress's kernel answers, replies return via node1's stack.
out=$(lab_exec client curl -sS --max-time 5 http://198.18.0.10/ 2>&1 || true)
lab_expect_match "HTTP to waf's service IP answered inside the waf ingress" "$out" "^waf client=198\.18\.1\.2:"
out=$(lab_exec client curl -sS --max-time 5 "http://[fd00:18::10]/" 2>&1 || true)
lab_expect_match "HTTP over IPv6 to waf's service IP" "$out" "^waf client=\[fd00:1::2\]:"

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
