#!/usr/bin/env bash
# What systemd and Prometheus see: the daemon runs with a test NOTIFY_SOCKET and a watchdog and
# must say READY=1 only once it forwards, feed WATCHDOG=1, say RELOADING=1/READY=1 around a
# reload and STOPPING=1 at the end; /metrics on metrics.listen must agree with the traffic sent
# and with `xdpfwdctl status --json`.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}" "${NOTIFY_LISTEN:?}"

lab_init sysd
lab_up
lab_remote_overlay 4106
lab_replica m1 4106 10.206.0.11/24
lab_bg m1 m1-udp "$LAB_PEER" udp-echo :: 7 --name m1
lab_wait_for "$LAB_DIR/m1-udp.log" listening 5
lab_bg node1 notify "$NOTIFY_LISTEN" "$LAB_DIR/notify.sock"
lab_wait_for "$LAB_DIR/notify.log" listening 5

config=$LAB_DIR/services.json
write_config() { # REPLICAS: the replica list of service sd-a
  cat >"$config.new" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "metrics": { "listen": "127.0.0.1:9469" },
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "sd", "service_ips": [ "198.18.0.40" ],
      "overlay": { "vni": 4106, "address": "10.206.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "sd-a", "replicas": [ $1 ] } ] } ]
}
EOF
  mv "$config.new" "$config"
}
write_config '{ "address": "10.206.0.11" }'
export NOTIFY_SOCKET=$LAB_DIR/notify.sock WATCHDOG_USEC=200000
lab_start_daemon "$config"
unset NOTIFY_SOCKET WATCHDOG_USEC
ready_line=$(grep -n "^READY=1" "$LAB_DIR/notify.log" | head -n 1 | cut -d: -f1)
lab_expect_match "READY=1 with a status" "$(cat "$LAB_DIR/notify.log")" "^READY=1\|STATUS=forwarding$"
lab_expect_match "the daemon logged ready only after bringing everything up" "$(cat "$LAB_DIR/daemon.log")" "ready: 1 ingresses, 1 service IPs"
sleep 1
watchdogs=$(grep -c "^WATCHDOG=1$" "$LAB_DIR/notify.log" || true)
if ((watchdogs >= 4)); then lab_pass "the watchdog is fed about twice per WatchdogSec ($watchdogs in ~1 s at 200 ms)"
else lab_fail "the watchdog is fed about twice per WatchdogSec" "$watchdogs WATCHDOG=1 in ~1 s"; fi
[[ -n $ready_line ]] && lab_expect "no watchdog message before READY=1" \
  "$(head -n "$ready_line" "$LAB_DIR/notify.log" | grep -c '^WATCHDOG=1$' || true)" 0

out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.40 7 --count 300 --wait-ms 3000)
lab_expect_match "300 datagrams answered" "$out" "^sent 300 received 300$"
metrics=$(lab_exec node1 curl -sS --max-time 5 http://127.0.0.1:9469/metrics)
status=$("$XDPFWDCTL" --socket "$LAB_DIR/control.sock" status --json)
lab_expect_match "/metrics: the XDP program counted the 300 frames" "$metrics" \
  '^xdpfwd_xdp_packets_total\{ingress="sd",address="198\.18\.0\.40"\} 300$'
lab_expect "... as xdpfwdctl status does" "$(jq '.ingresses[0].service_ips[0].packets' <<<"$status")" 300
lab_expect_match "/metrics: the inspector sent 300 to the overlay" "$metrics" \
  '^xdpfwd_inspector_forwarded_packets_total\{ingress="sd",direction="to_overlay"\} 300$'
lab_expect_match "/metrics: ... and 300 back to the client" "$metrics" \
  '^xdpfwd_inspector_forwarded_packets_total\{ingress="sd",direction="to_client"\} 300$'
lab_expect "... as xdpfwdctl status does" "$(jq '.ingresses[0].inspector.to_client' <<<"$status")" 300
lab_expect_match "/metrics: the replica is up" "$metrics" '^xdpfwd_replica_up\{ingress="sd",service="sd-a",replica="10\.206\.0\.11"\} 1$'
lab_expect_match "/metrics: every family has HELP and TYPE" "$metrics" '^# TYPE xdpfwd_replica_up gauge$'
lab_expect "/metrics answers 404 elsewhere" "$(lab_exec node1 curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9469/)" 404

write_config '{ "address": "10.206.0.11" }, { "address": "10.206.0.12", "weight": 0 }'
waited=0
until grep -q "^RELOADING=1" "$LAB_DIR/notify.log" && (($(grep -c "^READY=1" "$LAB_DIR/notify.log") >= 2)) || ((waited++ > 50)); do sleep 0.1; done
lab_expect_match "a reload says RELOADING=1 ..." "$(cat "$LAB_DIR/notify.log")" "^RELOADING=1"
lab_expect "... then READY=1 again" "$(grep -c '^READY=1' "$LAB_DIR/notify.log")" 2
metrics=$(lab_exec node1 curl -sS --max-time 5 http://127.0.0.1:9469/metrics)
lab_expect_match "/metrics: the reload is counted" "$metrics" '^xdpfwd_reloads_total\{result="applied"\} 1$'
lab_expect_match "/metrics: the new replica is drained (weight 0)" "$metrics" \
  '^xdpfwd_replica_weight\{ingress="sd",service="sd-a",replica="10\.206\.0\.12"\} 0$'

lab_stop_daemon
lab_expect_match "STOPPING=1 at the end" "$(tail -n 1 "$LAB_DIR/notify.log")" "^STOPPING=1$"
lab_summary
