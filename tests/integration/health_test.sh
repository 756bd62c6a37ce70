#!/usr/bin/env bash
# Health checks from the ingress, over the overlay: a replica whose server stops leaves rotation
# within interval x fall, comes back after rise; all replicas down is logged loudly and counted.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init hlth
lab_up
lab_remote_overlay 4109
declare -A server
for i in 1 2; do
  lab_replica "h$i" 4109 "10.209.0.1$i/24"
  lab_bg "h$i" "h$i-http" "$LAB_PEER" http-serve :: 80 --name "h$i"
  server[h$i]=$LAB_LAST_PID
  lab_wait_for "$LAB_DIR/h$i-http.log" listening 5
done

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "hc", "service_ips": [ "198.18.0.60" ],
      "overlay": { "vni": 4109, "address": "10.209.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "hc-a", "lb": "round_robin",
        "replicas": [ { "address": "10.209.0.11" }, { "address": "10.209.0.12" } ],
        "health_check": { "type": "http", "port": 80, "http_path": "/", "http_expect_status": 200,
                          "interval_ms": 200, "timeout_ms": 150, "fall": 2, "rise": 2 } } ] } ]
}
EOF
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
healthy() { ctl status --json | jq -r --arg a "$1" '.ingresses[0].inspector.services[0].replicas[] | select(.address == $a) | .healthy'; }
answers() { local out="" _; for _ in $(seq 10); do out+="$(lab_exec client curl -sS --max-time 3 http://198.18.0.60/ 2>&1 || true)"$'\n'; done; echo "$out"; }
# wait_health ADDRESS true|false SECONDS: how long it took, or "timeout"
wait_health() {
  local start waited=0
  start=$(date +%s%N)
  until [[ $(healthy "$1") == "$2" ]]; do
    ((waited++ < $3 * 20)) || { echo timeout; return; }
    sleep 0.05
  done
  echo $((($(date +%s%N) - start) / 1000000))
}

out=$(answers)
lab_expect_match "both replicas answer while healthy (h1)" "$out" "^h1 "
lab_expect_match "... (h2)" "$out" "^h2 "

lab_stop "${server[h2]}" 5 || true
took=$(wait_health 10.209.0.12 false 5)
# interval 200 ms x fall 2, plus a probe timeout and the status round trip.
if [[ $took != timeout ]] && ((took <= 1000)); then lab_pass "a replica whose server stopped leaves rotation (${took} ms; interval x fall = 400 ms)"
else lab_fail "a replica whose server stopped leaves rotation within ~interval x fall" "$took"; fi
out=$(answers)
lab_expect "... every request now goes to the other replica" "$(grep -c '^h1 ' <<<"$out")" 10
lab_expect_match "... and the daemon's log names it" "$(cat "$LAB_DIR/daemon.log")" "health: service hc-a replica 10\.209\.0\.12 is down"

lab_bg h2 h2-http-again "$LAB_PEER" http-serve :: 80 --name h2
server[h2]=$LAB_LAST_PID
took=$(wait_health 10.209.0.12 true 5)
if [[ $took != timeout ]]; then lab_pass "it comes back after rise successful probes (${took} ms)"; else lab_fail "it comes back after rise" "$took"; fi
lab_expect_match "... and takes requests again" "$(answers)" "^h2 "

lab_stop "${server[h1]}" 5 || true
lab_stop "${server[h2]}" 5 || true
wait_health 10.209.0.11 false 5 >/dev/null
wait_health 10.209.0.12 false 5 >/dev/null
sleep 0.2
lab_expect_match "all replicas down is logged loudly" "$(cat "$LAB_DIR/daemon.log")" "error .*health: service hc-a: ALL 2 REPLICAS ARE DOWN"
lab_expect "... and counted" "$(ctl status --json | jq '.ingresses[0].inspector.health.services[0].all_down_events')" 1

lab_summary
