#!/usr/bin/env bash
# The ingress inspector end to end: ingress "waf" (client_ip nat) has three replicas on node2
# behind its overlay (VNI 4101), ingress "keep" (client_ip preserve) one replica behind another
# overlay (VNI 4102). Real traffic from the client: spread over the replicas, TCP and UDP, IPv4
# and IPv6; a denied port, a denied source and a flooding source are dropped and counted;
# preserve shows the client's address at the replica; the two overlays cannot reach each other's
# replicas; an inspector killed with SIGKILL is restarted by the daemon and traffic resumes.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init ingr
lab_up
client=$(lab_ns client)
# Two more client addresses: one the policy denies, one that floods (rate limits are per source).
ip -n "$client" addr add 198.18.1.66/24 dev eth0
ip -n "$client" addr add 198.18.1.77/24 dev eth0

lab_remote_overlay 4101
lab_remote_overlay 4102
for i in 1 2 3; do
  lab_replica "r$i" 4101 "10.201.0.1$i/24" "fd00:201::1$i/64"
  lab_bg "r$i" "r$i-udp" "$LAB_PEER" udp-echo :: 7 --name "r$i"
  lab_bg "r$i" "r$i-http" "$LAB_PEER" http-serve :: 80 --name "r$i"
done
lab_replica p1 4102 10.202.0.11/24
lab_bg p1 p1-http "$LAB_PEER" http-serve :: 80 --name p1
for log in r1-udp r2-udp r3-udp r1-http r2-http r3-http p1-http; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "waf", "service_ips": [ "198.18.0.10", "fd00:18::10" ],
      "overlay": { "vni": 4101, "address": "10.201.0.1/24", "address6": "fd00:201::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "inspect": {
        "allow": [ { "proto": "tcp", "ports": [ 80 ] }, { "proto": "udp", "ports": [ 7 ] }, { "proto": "icmp" } ],
        "deny_sources": [ "198.18.1.66/32" ],
        "rate_limit": { "packets_per_second_per_source": 2000, "burst": 1000 } },
      "services": [ { "name": "waf-a", "replicas": [
        { "address": "10.201.0.11" }, { "address": "10.201.0.12" }, { "address": "10.201.0.13" },
        { "address": "fd00:201::11" }, { "address": "fd00:201::12" }, { "address": "fd00:201::13" } ] } ] },
    { "name": "keep", "service_ips": [ "198.18.0.20" ],
      "overlay": { "vni": 4102, "address": "10.202.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "keep-a", "client_ip": "preserve", "replicas": [ { "address": "10.202.0.11" } ] } ] }
  ]
}
EOF
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
drops() { ctl status --json | jq -r --arg reason "$1" '.ingresses[] | select(.name == "waf") | .inspector.drops[$reason] // 0'; }
inspector() { ctl status --json | jq -r --arg field "$1" '.ingresses[] | select(.name == "waf") | .inspector[$field]'; }

# HTTP: every request is a new connection, so a new flow; Maglev spreads them by 5-tuple.
answers=$(lab_curls 30 http://198.18.0.10/)
lab_expect "30 HTTP requests all answered" "$(grep -c '^r[123] client=10\.201\.0\.1:' <<<"$answers")" 30
for i in 1 2 3; do lab_expect_match "replica r$i answered some of them" "$answers" "^r$i "; done

# UDP: a flow per sender socket; all datagrams of a flow go to one replica and all are answered.
udp=$(lab_udp_flows 9 198.18.0.10 7)
lab_expect "9 UDP flows of 20 datagrams, all answered" "$(grep -c '^sent 20 received 20$' <<<"$udp")" 9
lab_expect "each flow answered by one replica" "$(grep -cE '^from r[123]: 20$' <<<"$udp")" 9

out=$(lab_exec client curl -sS --max-time 5 "http://[fd00:18::10]/" 2>&1 || true)
lab_expect_match "HTTP over IPv6 answered by an IPv6 replica, NAT'ed" "$out" "^r[123] client=\[fd00:201::1\]:"
out=$(lab_exec client "$LAB_PEER" udp-send fd00:18::10 7 --count 20 --wait-ms 3000)
lab_expect_match "UDP over IPv6 answered" "$out" "^sent 20 received 20$"

# Policy: a port that is not allowed, a denied source, a source over its rate.
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.10 9 --count 10 --wait-ms 500)
lab_expect_match "UDP to a port the policy does not allow gets no answer" "$out" "^sent 10 received 0$"
lab_expect "... and is counted as port_not_allowed" "$(drops port_not_allowed)" 10
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.10 7 --count 10 --wait-ms 500 --bind 198.18.1.66)
lab_expect_match "a denied source gets no answer" "$out" "^sent 10 received 0$"
lab_expect "... and is counted as denied_source" "$(drops denied_source)" 10
# Besides the rate limit, a flood is cut where rings are full, and the kernel counts each: the
# client's veth drops what node1's receive ring cannot take (those never reach xdpfwd), and the
# ingress veth's receive drops count both what its ring and what the AF_XDP socket's ring could
# not take.
host_packets() { ctl status --json | jq '.ingresses[] | select(.name == "waf") | .service_ips[] | select(.address == "198.18.0.10") | .packets'; }
client_tx_drops() { lab_exec client ip -j -s link show eth0 | jq '.[0].stats64.tx.dropped'; }
ingress_rx_drops() { lab_exec_netns xdpfwd-waf ip -j -s link show eth0 | jq '.[0].stats64.rx.dropped'; }
before=("$(inspector accepted)" "$(drops rate_limited)" "$(host_packets)" "$(client_tx_drops)" "$(ingress_rx_drops)")
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.10 7 --count 5000 --wait-ms 2000 --bind 198.18.1.77)
received=$(sed -nE 's/^sent 5000 received ([0-9]+)$/\1/p' <<<"$out")
if ((received > 0 && received < 5000)); then lab_pass "a flood of 5000 datagrams is cut by the rate limit ($received answered)"
else lab_fail "a flood of 5000 datagrams is cut by the rate limit" "$out"; fi
accepted=$(($(inspector accepted) - before[0]))
limited=$(($(drops rate_limited) - before[1]))
reached=$(($(host_packets) - before[2]))
client_drops=$(($(client_tx_drops) - before[3]))
ring_drops=$(($(ingress_rx_drops) - before[4]))
lab_expect "every datagram of the flood is accounted for: $client_drops dropped at the client's veth, $reached reached xdpfwd" \
  "$((client_drops + reached))" 5000
lab_expect "... of which accepted $accepted, rate_limited $limited, ring drops $ring_drops" \
  "$((accepted + limited + ring_drops))" "$reached"
lab_expect "... and every accepted one answered" "$received" "$accepted"
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.10 7 --count 20 --wait-ms 3000)
lab_expect_match "other sources are not limited meanwhile" "$out" "^sent 20 received 20$"

# client_ip preserve: the replica sees the client, and answers through the ingress.
out=$(lab_exec client curl -sS --max-time 5 http://198.18.0.20/ 2>&1 || true)
lab_expect_match "preserve: the replica sees the client's address" "$out" "^p1 client=198\.18\.1\.2:"

# Each ingress's overlay is its own: even with an address in keep's overlay subnet, the waf
# ingress cannot reach keep's replica, while keep's ingress can.
ip -n xdpfwd-waf addr add 10.202.0.99/24 dev ovl0
out=$(lab_exec_netns xdpfwd-waf curl -sS --max-time 2 http://10.202.0.11/ 2>&1 || true)
lab_expect_no_match "VNI 4101 does not reach VNI 4102's replica" "$out" "^p1 "
ip -n xdpfwd-waf addr del 10.202.0.99/24 dev ovl0
out=$(lab_exec_netns xdpfwd-keep curl -sS --max-time 2 http://10.202.0.11/ 2>&1 || true)
lab_expect_match "... which keep's ingress reaches" "$out" "^p1 client=10\.202\.0\.1:"

# Replicas whose veths offload TX checksums (Docker's default) send TCP/UDP with partial
# checksums; the inspector completes them, so clients still get valid segments.
for i in 1 2 3; do lab_exec "r$i" ethtool -K eth0 tx on >/dev/null; done
answers=$(lab_curls 6 http://198.18.0.10/)
lab_expect "with TX checksum offload on at the replicas, 6 HTTP requests answered" \
  "$(grep -c '^r[123] client=10\.201\.0\.1:' <<<"$answers")" 6
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.10 7 --count 20 --wait-ms 3000)
lab_expect_match "... and 20 datagrams" "$out" "^sent 20 received 20$"
completed=$(inspector checksums_completed)
if ((completed > 0)); then lab_pass "... their partial checksums completed by the inspector ($completed)"
else lab_fail "... their partial checksums completed by the inspector" "$completed"; fi
for i in 1 2 3; do lab_exec "r$i" ethtool -K eth0 tx off >/dev/null; done

# What operators see: the same figures in xdpfwdctl's tables.
table=$(ctl status)
lab_expect_match "xdpfwdctl status lists the replicas" "$table" "^waf +waf-a +10\.201\.0\.12 +1 +yes +yes"
lab_expect_match "xdpfwdctl status lists the drops" "$table" "^waf +rate_limited +$limited$"

# An inspector killed under the daemon's feet comes back, configured, and traffic resumes.
old_pid=$(cat "$LAB_DIR/ingress-waf.pid")
kill -KILL "$old_pid"
lab_wait_for "$LAB_DIR/daemon.log" "ingress waf: inspector was killed by Killed" 5
waited=0
until [[ $(grep -c "ingress waf: inspector configured" "$LAB_DIR/daemon.log") -ge 2 ]] || ((waited++ > 100)); do sleep 0.1; done
lab_expect_match "the daemon restarted the killed inspector" "$(cat "$LAB_DIR/daemon.log")" "ingress waf: restarting the inspector"
out=$(lab_exec client curl -sS --max-time 5 http://198.18.0.10/ 2>&1 || true)
lab_expect_match "traffic resumes through the new inspector" "$out" "^r[123] client=10\.201\.0\.1:"

status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
if kill -0 "$(cat "$LAB_DIR/ingress-waf.pid" 2>/dev/null || echo "$old_pid")" 2>/dev/null; then
  lab_fail "no inspector survives the daemon"
else
  lab_pass "no inspector survives the daemon"
fi
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-(waf|keep)( |$)"

lab_summary
