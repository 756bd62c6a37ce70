#!/usr/bin/env bash
# Faults under traffic, each counting what was lost. Ingress "flt" (198.18.0.40, fd00:18::40) has
# replicas f1 and f2 on node2 behind its overlay (VNI 4111), with a TCP health check:
# - the ingress's XDP programs removed by hand are noticed and put back, and the loss is counted;
# - a replica's netns deleted under a stream: the flow moves to the other replica;
# - the VXLAN underlay link down, then up: traffic resumes by itself;
# - a config that overflows a BPF map is refused whole, at reload and at start;
# - a frame at the overlay's MTU passes, one byte more gets fragmentation-needed /
#   packet-too-big, or (IPv4 without DF) a counted drop.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init flt
lab_up
node1=$(lab_ns node1)
lab_remote_overlay 4111
declare -A udp_pid http_pid
for i in 1 2; do
  lab_replica "f$i" 4111 "10.211.0.1$i/24" "fd00:211::1$i/64"
  lab_bg "f$i" "f$i-udp" "$LAB_PEER" udp-echo :: 7 --name "f$i"
  udp_pid[f$i]=$LAB_LAST_PID
  lab_bg "f$i" "f$i-http" "$LAB_PEER" http-serve :: 80 --name "f$i"
  http_pid[f$i]=$LAB_LAST_PID
  lab_wait_for "$LAB_DIR/f$i-udp.log" listening 5
  lab_wait_for "$LAB_DIR/f$i-http.log" listening 5
done

config=$LAB_DIR/services.json
# ingress_json NAME SERVICE_IPS_JSON VNI SUBNET_PREFIX (e.g. 10.211.0)
ingress_json() {
  cat <<EOF
    { "name": "$1", "service_ips": $2,
      "overlay": { "vni": $3, "address": "$4.1/24", "address6": "fd00:211::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "$1-a", "replicas": [
        { "address": "$4.11" }, { "address": "$4.12" }, { "address": "fd00:211::11" }, { "address": "fd00:211::12" } ],
        "health_check": { "type": "tcp", "port": 80, "interval_ms": 200, "timeout_ms": 150, "fall": 2, "rise": 2 } } ] }
EOF
}
write_config() {
  cat >"$1" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
$2
  ]
}
EOF
}
write_config "$config" "$(ingress_json flt '[ "198.18.0.40", "fd00:18::40" ]' 4111 10.211.0)"
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
inspector() { ctl status --json | jq -r --arg field "$1" '.ingresses[0].inspector[$field] // 0'; }
drops() { ctl status --json | jq -r --arg reason "$1" '.ingresses[0].inspector.drops[$reason] // 0'; }
active_flows() {
  ctl status --json | jq -r --arg a "$1" '.ingresses[0].inspector.services[0].replicas[] | select(.address == $a) | .active_flows'
}
healthy() {
  ctl status --json | jq -r --arg a "$1" '.ingresses[0].inspector.services[0].replicas[] | select(.address == $a) | .healthy'
}
# stream NAME: a paced UDP flow to the service, 3000 datagrams one per millisecond, in the
# background; stream_result NAME waits for it and sets $out to its "sent N received M" and
# "from ..." lines (not in a $(...) subshell, which cannot wait for the shell's children).
stream() {
  lab_bg client "$1" "$LAB_PEER" udp-send 198.18.0.40 7 --count 3000 --gap-us 1000 --wait-ms 2000
  declare -g "stream_pid_$1=$LAB_LAST_PID"
}
stream_result() {
  local pid_var="stream_pid_$1"
  wait "${!pid_var}" || true
  out=$(cat "$LAB_DIR/$1.log")
}
received_of() { sed -nE 's/^sent [0-9]+ received ([0-9]+)$/\1/p' <<<"$1"; }
http_ok() { lab_exec client curl -sS --max-time 3 http://198.18.0.40/ 2>&1 || true; }

out=$(http_ok)
lab_expect_match "the service answers" "$out" "^f[12] client=10\.211\.0\.1:"

# 1. The XDP programs of the ingress removed by hand. Without eth0's program the veth refuses
# the host's redirects: the daemon counts those frames (redirect_not_delivered, from the
# kernel's xdp_devmap_xmit tracepoint) and the inspector puts its program back within its
# housekeeping tick. Every datagram the stream lost must be in that count.
not_delivered() { ctl status --json | jq -r '.ingresses[0].redirect_not_delivered'; }
not_delivered_before=$(not_delivered)
stream xdp
sleep 0.5
lab_exec_netns xdpfwd-flt ip link set dev eth0 xdpdrv off
stream_result xdp
received=$(received_of "$out")
lost=$((3000 - received))
lab_wait_for "$LAB_DIR/daemon.log" "eth0: xdpfwd_ingress_client is no longer attached (no XDP program); putting it back" 5
counted=$(($(not_delivered) - not_delivered_before))
if ((lost > 0 && lost < 500 && counted == lost)); then
  lab_pass "eth0's program removed: the stream lost $lost of 3000 datagrams, all counted as redirect_not_delivered"
else
  lab_fail "the datagrams lost while eth0's program was away are counted" "lost $lost, counted $counted: $out"
fi
lab_expect_match "xdpfwdctl status shows them" "$(ctl status)" "^flt +redirect_not_delivered \(host XDP -> ingress veth\) +$counted$"
lab_exec_netns xdpfwd-flt ip link set dev ovl0 xdpdrv off
lab_wait_for "$LAB_DIR/daemon.log" "ovl0: xdpfwd_ingress_overlay is no longer attached (no XDP program); putting it back" 5
lab_expect "both removed programs were put back, and counted" "$(inspector xdp_programs_restored)" 2
lab_expect "XDP programs attached again on eth0 and ovl0 (native)" \
  "$(lab_exec_netns xdpfwd-flt ip -j link show | jq -r '[.[] | select(.xdp) | "\(.ifname):\(.xdp.mode)"] | sort | join(",")')" \
  "eth0:1,ovl0:1"
lab_expect_match "traffic flows again" "$(http_ok)" "^f[12] client=10\.211\.0\.1:"

# 2. A replica's netns deleted under traffic: the stream's flow moves to the other replica once
# the health check has seen it down (interval 200 ms x fall 2, plus a probe timeout).
declare -A flows_before
for i in 1 2; do flows_before[f$i]=$(active_flows "10.211.0.1$i"); done
stream replica
sleep 0.5
victim=""
for i in 1 2; do (($(active_flows "10.211.0.1$i") > ${flows_before[f$i]})) && victim=f$i && break; done
other=$([[ $victim == f1 ]] && echo f2 || echo f1)
# Its processes end with it, as a container's do: a netns lives on while a process is inside.
lab_stop "${udp_pid[$victim]}" 1 >/dev/null 2>&1 || true
lab_stop "${http_pid[$victim]}" 1 >/dev/null 2>&1 || true
ip netns delete "$(lab_ns "$victim")"
stream_result replica
received=$(received_of "$out")
moved=$(sed -nE "s/^from $other: ([0-9]+)$/\1/p" <<<"$out")
if [[ -n $victim ]] && ((received >= 2000)) && ((${moved:-0} > 0)); then
  lab_pass "replica $victim deleted: the stream went on at $other ($received of 3000 answered, $((3000 - received)) lost)"
else
  lab_fail "the stream moves to the other replica when its replica's netns is deleted" "victim '$victim': $out"
fi
victim_address=10.211.0.1${victim#f}
lab_expect "the deleted replica is out of rotation" "$(healthy "$victim_address")" false
lab_expect_match "new connections go to $other" "$(http_ok)" "^$other client="
lab_expect_match "the inspector logged it" "$(cat "$LAB_DIR/daemon.log")" "replica $victim_address is down"

# 3. The VXLAN underlay down for a second, then up: nothing to repair by hand.
stream underlay
sleep 0.5
ip -n "$node1" link set u0 down
sleep 1
ip -n "$node1" link set u0 up
stream_result underlay
received=$(received_of "$out")
if ((received >= 1000 && received < 3000)); then
  lab_pass "underlay down for 1 s: the stream lost $((3000 - received)) of 3000 datagrams and resumed"
else
  lab_fail "the stream resumes after the underlay comes back" "$out"
fi
waited=0
until [[ $(healthy "10.211.0.1${other#f}") == true ]] || ((waited++ > 50)); do sleep 0.1; done
lab_expect_match "new connections after the underlay is back" "$(http_ok)" "^$other client="

# 4. A config that overflows a BPF map is refused whole: at reload, and at start.
generation=$(ctl status --json | jq .generation)
services_before=$(bpftool -j map dump pinned "$LAB_PIN_DIR/services" | jq length)
too_many=$(jq -nc '[range(4097) | "fd00:18::\(. + 256 | tostring)"]')
write_config "$LAB_DIR/big.json" "$(ingress_json flt "$too_many" 4111 10.211.0)"
cp "$config" "$LAB_DIR/good.json"
cp "$LAB_DIR/big.json" "$config"
out=$(ctl reload 2>&1 || true)
lab_expect_match "a reload with 4097 service IPs in an ingress is refused" "$out" \
  "ingresses\[0\]\.service_ips: has 4097 addresses; an ingress takes at most 256"
lab_expect_match "... and so is their sum" "$out" \
  "ingresses: have 4097 service IPs in all; the host XDP program's services map takes at most 4096"
lab_expect "... nothing of it applied (generation, services map)" \
  "$(ctl status --json | jq .generation) $(bpftool -j map dump pinned "$LAB_PIN_DIR/services" | jq length)" \
  "$generation $services_before"
cp "$LAB_DIR/good.json" "$config"
lab_expect_match "... traffic goes on" "$(http_ok)" "^$other client="
start_out=$(lab_exec node1 timeout 10 "$XDPFWD" --config "$LAB_DIR/big.json" 2>&1) && status=0 || status=$?
lab_expect "xdpfwd refuses to start with it (exit 1)" "$status" 1
lab_expect_match "... naming the map" "$start_out" "the host XDP program's services map takes at most 4096"

# 5. MTU: the overlay's is the underlay's 1500 minus VXLAN's 50 over IPv4.
mtu=$(lab_exec_netns xdpfwd-flt ip -j link show ovl0 | jq '.[0].mtu')
lab_expect "the overlay's MTU" "$mtu" 1450
flush_pmtu() { lab_exec client ip route flush cache; lab_exec client ip -6 route flush cache; }
# ICMP echo: 20 (IPv4) or 40 (IPv6) + 8 bytes of header.
out=$(lab_exec client ping -n -c 2 -W 2 -M do -s $((mtu - 28)) 198.18.0.40 2>&1 || true)
lab_expect_match "IPv4: a $mtu-byte packet passes" "$out" "2 received"
flush_pmtu
out=$(lab_exec client ping -n -c 2 -W 2 -M do -s $((mtu - 27)) 198.18.0.40 2>&1 || true)
lab_expect_match "IPv4: $((mtu + 1)) bytes with DF get fragmentation-needed with the MTU" "$out" "Frag needed and DF set \(mtu = $mtu\)"
too_big_before=$(drops too_big)
flush_pmtu
out=$(lab_exec client ping -n -c 2 -W 1 -M dont -s $((mtu - 27)) 198.18.0.40 2>&1 || true)
lab_expect "IPv4: $((mtu + 1)) bytes without DF are dropped and counted as too_big" "$(($(drops too_big) - too_big_before))" 2
out=$(lab_exec client ping -6 -n -c 2 -W 2 -M do -s $((mtu - 48)) fd00:18::40 2>&1 || true)
lab_expect_match "IPv6: a $mtu-byte packet passes" "$out" "2 received"
flush_pmtu
out=$(lab_exec client ping -6 -n -c 2 -W 2 -M do -s $((mtu - 47)) fd00:18::40 2>&1 || true)
lab_expect_match "IPv6: $((mtu + 1)) bytes get packet-too-big with the MTU" "$out" "Packet too big: mtu=$mtu"
flush_pmtu

status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-flt( |$)"
lab_summary
