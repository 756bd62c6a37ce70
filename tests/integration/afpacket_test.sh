#!/usr/bin/env bash
# The AF_PACKET fallback end to end: with XDPFWD_INGRESS_TRANSPORT=af_packet in the daemon's
# environment, the inspector of ingress "pk" moves its frames through AF_PACKET rings instead of
# AF_XDP sockets (the tc ingress programs mark them, the ingress netns's stack never sees them).
# Real traffic from the client to three replicas on node2: HTTP and UDP spread over the replicas,
# IPv4 and IPv6, a port the policy does not allow dropped and counted, partial checksums from
# replicas with TX offload completed, a killed inspector replaced. Then the fallback proper: with
# the default transport, an inspector that cannot bind its AF_XDP socket warns and uses AF_PACKET.
# A bad transport name is refused with a clear error, by the daemon before it starts anything.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init pkt
lab_up
lab_remote_overlay 4110
for i in 1 2 3; do
  lab_replica "k$i" 4110 "10.210.0.1$i/24" "fd00:210::1$i/64"
  lab_bg "k$i" "k$i-udp" "$LAB_PEER" udp-echo :: 7 --name "k$i"
  lab_bg "k$i" "k$i-http" "$LAB_PEER" http-serve :: 80 --name "k$i"
done
for log in k1-udp k2-udp k3-udp k1-http k2-http k3-http; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

config=$LAB_DIR/services.json
cat >"$config" <<EOF2
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "pk", "service_ips": [ "198.18.0.70", "fd00:18::70" ],
      "overlay": { "vni": 4110, "address": "10.210.0.1/24", "address6": "fd00:210::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "inspect": { "allow": [ { "proto": "tcp", "ports": [ 80 ] }, { "proto": "udp", "ports": [ 7 ] }, { "proto": "icmp" } ] },
      "services": [ { "name": "pk-a", "replicas": [
        { "address": "10.210.0.11" }, { "address": "10.210.0.12" }, { "address": "10.210.0.13" },
        { "address": "fd00:210::11" }, { "address": "fd00:210::12" }, { "address": "fd00:210::13" } ] } ] } ]
}
EOF2

out=$("$(dirname "$XDPFWD")/xdpfwd-ingress" --ingress pk --control "$LAB_DIR/unused.sock" --transport afpacket 2>&1 || true)
lab_expect_match "xdpfwd-ingress refuses an unknown transport, naming it" "$out" 'transport "afpacket": expected auto, af_xdp or af_packet'

status=0
out=$(XDPFWD_INGRESS_TRANSPORT=afpacket lab_exec node1 "$XDPFWD" --config "$config" 2>&1) || status=$?
lab_expect "xdpfwd refuses to start with an unknown XDPFWD_INGRESS_TRANSPORT" "$status" 1
lab_expect_match "... naming it" "$out" 'XDPFWD_INGRESS_TRANSPORT="afpacket": expected auto, af_xdp or af_packet, not starting'
lab_expect_no_match "... before making anything" "$(ip netns list)" "^xdpfwd-pk( |$)"

export XDPFWD_INGRESS_TRANSPORT=af_packet
lab_start_daemon "$config"
unset XDPFWD_INGRESS_TRANSPORT
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
inspector() { ctl status --json | jq -r ".ingresses[] | select(.name == \"pk\") | .inspector$1"; }

lab_expect_match "the inspector's data path runs on AF_PACKET rings" "$(cat "$LAB_DIR/daemon.log")" \
  "data path up: AF_PACKET on eth0 and ovl0"
lab_expect "... status says so" "$(inspector .transport)" AF_PACKET
for dev in eth0 ovl0; do
  lab_expect_match "... with the tc program on $dev" "$(lab_exec_netns xdpfwd-pk tc filter show dev $dev ingress)" \
    "handle 0x78 xdpfwd_ingress_.* direct-action"
done

answers=$(lab_curls 30 http://198.18.0.70/)
lab_expect "30 HTTP requests all answered" "$(grep -c '^k[123] client=10\.210\.0\.1:' <<<"$answers")" 30
for i in 1 2 3; do lab_expect_match "replica k$i answered some of them" "$answers" "^k$i "; done

udp=$(lab_udp_flows 9 198.18.0.70 7)
lab_expect "9 UDP flows of 20 datagrams, all answered" "$(grep -c '^sent 20 received 20$' <<<"$udp")" 9
lab_expect "each flow answered by one replica" "$(grep -cE '^from k[123]: 20$' <<<"$udp")" 9

out=$(lab_exec client curl -sS --max-time 5 "http://[fd00:18::70]/" 2>&1 || true)
lab_expect_match "HTTP over IPv6 answered by an IPv6 replica, NAT'ed" "$out" "^k[123] client=\[fd00:210::1\]:"
out=$(lab_exec client "$LAB_PEER" udp-send fd00:18::70 7 --count 20 --wait-ms 3000)
lab_expect_match "UDP over IPv6 answered" "$out" "^sent 20 received 20$"

out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.70 9 --count 10 --wait-ms 500)
lab_expect_match "UDP to a port the policy does not allow gets no answer" "$out" "^sent 10 received 0$"
lab_expect "... and is counted as port_not_allowed" "$(inspector '.drops.port_not_allowed // 0')" 10

for i in 1 2 3; do lab_exec "k$i" ethtool -K eth0 tx on >/dev/null; done
answers=$(lab_curls 6 http://198.18.0.70/)
lab_expect "with TX checksum offload on at the replicas, 6 HTTP requests answered" \
  "$(grep -c '^k[123] client=10\.210\.0\.1:' <<<"$answers")" 6
completed=$(inspector .checksums_completed)
if ((completed > 0)); then lab_pass "... their partial checksums completed by the inspector ($completed)"
else lab_fail "... their partial checksums completed by the inspector" "$completed"; fi
for i in 1 2 3; do lab_exec "k$i" ethtool -K eth0 tx off >/dev/null; done

# Every frame went through the rings: the tc programs counted them, AF_XDP none, and the
# ingress netns's own stack neither reset a connection nor refused a datagram.
client_frames=$(inspector .xdp.client_packet_socket)
overlay_frames=$(inspector .xdp.overlay_packet_socket)
if ((client_frames > 0 && overlay_frames > 0)); then
  lab_pass "the tc programs took the frames for the rings (client $client_frames, overlay $overlay_frames)"
else lab_fail "the tc programs took the frames for the rings" "client $client_frames overlay $overlay_frames"; fi
lab_expect "... none went to an AF_XDP socket" "$(inspector .xdp.client_redirected)" 0
received=$(inspector ' | .client_socket.ipv4.received + .client_socket.ipv6.received')
lab_expect "... the client rings received what the tc program marked" "$received" "$client_frames"
received=$(inspector ' | .overlay_socket.ipv4.received + .overlay_socket.ipv6.received')
lab_expect "... the overlay rings too" "$received" "$overlay_frames"
lab_expect "... with nothing lost to full rings" "$(inspector ' | [(.client_socket, .overlay_socket) | .ipv4.ring_full, .ipv6.ring_full] | add')" 0
counters=$(lab_exec_netns xdpfwd-pk nstat -asz TcpOutRsts UdpNoPorts Udp6NoPorts)
lab_expect "... the ingress netns's stack sent no TCP reset" "$(awk '$1 == "TcpOutRsts" { print $2 }' <<<"$counters")" 0
lab_expect "... and refused no datagram" "$(awk '$1 ~ /^Udp6?NoPorts$/ { s += $2 } END { print s + 0 }' <<<"$counters")" 0

# A killed inspector leaves its tc filters behind; the restarted one replaces them in place.
old_pid=$(cat "$LAB_DIR/ingress-pk.pid")
kill -KILL "$old_pid"
lab_wait_for "$LAB_DIR/daemon.log" "ingress pk: inspector was killed by Killed" 5
waited=0
until [[ $(grep -c "ingress pk: inspector configured" "$LAB_DIR/daemon.log") -ge 2 ]] || ((waited++ > 100)); do sleep 0.1; done
out=$(lab_exec client curl -sS --max-time 5 http://198.18.0.70/ 2>&1 || true)
lab_expect_match "after a SIGKILL the restarted inspector forwards again" "$out" "^k[123] client=10\.210\.0\.1:"
lab_expect "... with one tc filter on eth0" "$(lab_exec_netns xdpfwd-pk tc filter show dev eth0 ingress | grep -c 'handle 0x78')" 1

status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-pk( |$)"

# The fallback itself: a daemon with the default transport (auto) gets AF_XDP; then, while the
# daemon is stopped (SIGSTOP), its inspector is killed and another process takes the AF_XDP
# queue of eth0, so the restarted inspector cannot bind there (EBUSY): it warns and runs on
# AF_PACKET rings, and traffic goes on.
lab_start_daemon "$config"
lab_expect "with the default transport the inspector uses AF_XDP" "$(inspector .transport)" AF_XDP
kill -STOP "$LAB_DAEMON_PID"
kill -KILL "$(cat "$LAB_DIR/ingress-pk.pid")"
lab_bg xdpfwd-pk xsk-hold "${XSK_HOLD:?}" eth0
hold_pid=$LAB_LAST_PID
lab_wait_for "$LAB_DIR/xsk-hold.log" "holding queue 0 of eth0" 10
configured=$(grep -c "ingress pk: inspector configured" "$LAB_DIR/daemon.log")
kill -CONT "$LAB_DAEMON_PID"
waited=0
until (($(grep -c "ingress pk: inspector configured" "$LAB_DIR/daemon.log") > configured)) || ((waited++ > 100)); do sleep 0.1; done
log=$(cat "$LAB_DIR/daemon.log")
lab_expect_match "the restarted inspector warns that it has no AF_XDP, naming the error" "$log" \
  "warn.*no AF_XDP \(.*Device or resource busy\): falling back to AF_PACKET"
lab_expect "... and runs on AF_PACKET" "$(inspector .transport)" AF_PACKET
answers=$(lab_curls 6 http://198.18.0.70/)
lab_expect "... 6 HTTP requests answered through it" "$(grep -c '^k[123] client=10\.210\.0\.1:' <<<"$answers")" 6
out=$(lab_exec client "$LAB_PEER" udp-send fd00:18::70 7 --count 20 --wait-ms 3000)
lab_expect_match "... and 20 datagrams over IPv6" "$out" "^sent 20 received 20$"
lab_stop "$hold_pid" 5 || true
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-pk( |$)"

lab_summary
