#!/usr/bin/env bash
# Hitless restarts. Under a steady UDP stream and one long-lived TCP connection, the daemon is
# stopped for a restart (`xdpfwdctl prepare-restart`, as systemd's restart job does by itself)
# and started again, then killed with SIGKILL and started again: each new daemon adopts the
# pinned maps, the attached program, the ingress and its running inspector. Not a datagram may
# be lost nor the connection reset, and the counters carry on. A plain stop then removes all.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init rsta
lab_up
lab_remote_overlay 4108
lab_replica q1 4108 10.208.0.11/24
lab_bg q1 q1-udp "$LAB_PEER" udp-echo :: 7 --name q1
lab_bg q1 q1-http "$LAB_PEER" http-serve :: 80 --name q1
lab_wait_for "$LAB_DIR/q1-udp.log" listening 5
lab_wait_for "$LAB_DIR/q1-http.log" listening 5

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "hl", "service_ips": [ "198.18.0.50" ],
      "overlay": { "vni": 4108, "address": "10.208.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "hl-a", "replicas": [ { "address": "10.208.0.11" } ] } ] } ]
}
EOF
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }

# One TCP connection, COUNT keep-alive requests GAP seconds apart; "ok COUNT" if all answered.
tcp_hold() {
  exec 3<>"/dev/tcp/$1/$2" || { echo "connect failed"; exit 1; }
  local i status line length body
  for ((i = 0; i < $3; i++)); do
    printf 'GET / HTTP/1.1\r\nHost: hl\r\n\r\n' >&3 || { echo "send failed at request $i"; exit 1; }
    IFS= read -r -t 3 status <&3 || { echo "no answer to request $i"; exit 1; }
    length=0
    while IFS= read -r -t 3 line <&3; do
      line=${line%$'\r'}
      [[ -z $line ]] && break
      [[ $line == Content-Length:* ]] && length=${line#*: }
    done
    IFS= read -r -N "$length" -t 3 body <&3 || { echo "no body for request $i"; exit 1; }
    sleep "$4"
  done
  echo "ok $3"
}
lab_bg client hold bash -c "$(declare -f tcp_hold); tcp_hold 198.18.0.50 80 50 0.1"
hold_pid=$LAB_LAST_PID
lab_bg client stream "$LAB_PEER" udp-send 198.18.0.50 7 --count 4000 --gap-us 1000 --wait-ms 3000
stream_pid=$LAB_LAST_PID
sleep 0.5

# A stop for a restart leaves everything running ...
inspector=$(cat "$LAB_DIR/ingress-hl.pid")
out=$(ctl prepare-restart)
lab_expect_match "xdpfwdctl prepare-restart" "$out" "keeps forwarding"
status=0
lab_stop_daemon || status=$?
lab_expect "the daemon exits 0 when stopped for a restart" "$status" 0
lab_expect_match "... saying so" "$(cat "$LAB_DIR/daemon.log")" "stopping for a restart"
lab_expect_match "... the ingress netns stays" "$(ip netns list)" "^xdpfwd-hl( |$)"
lab_expect_match "... the XDP program stays" "$(lab_exec node1 ip -o link show eth0)" "prog/xdp"
if kill -0 "$inspector" 2>/dev/null; then lab_pass "... the inspector keeps running"; else lab_fail "... the inspector keeps running"; fi

# ... for the next daemon to adopt.
lines=$(wc -l <"$LAB_DIR/daemon.log")
lab_start_daemon "$config"
log=$(tail -n +"$((lines + 1))" "$LAB_DIR/daemon.log")
lab_expect_match "the new daemon adopts the pinned maps with their entries" "$log" "adopting the BPF maps .* with their entries"
lab_expect_match "... the ingress" "$log" "ingress hl: adopted netns xdpfwd-hl"
lab_expect_match "... the running inspector" "$log" "ingress hl: adopted the running inspector \(pid $inspector\)"
lab_expect_match "... and replaces the XDP program in place" "$log" "eth0: replaced the previous run's XDP program in place"
sleep 0.5

# SIGKILL: nothing is cleaned up, and the next daemon adopts it all the same.
kill -KILL "$LAB_DAEMON_PID"
wait "$LAB_DAEMON_PID" 2>/dev/null || true
LAB_DAEMON_PID=""
lines=$(wc -l <"$LAB_DIR/daemon.log")
lab_start_daemon "$config"
lab_expect_match "after SIGKILL the next daemon adopts the inspector too" "$(tail -n +"$((lines + 1))" "$LAB_DIR/daemon.log")" \
  "ingress hl: adopted the running inspector \(pid $inspector\)"

wait "$stream_pid" || true
wait "$hold_pid" || true
lab_expect_match "no datagram of the stream was lost across both restarts" "$(cat "$LAB_DIR/stream.log")" "^sent 4000 received 4000$"
lab_expect_match "the TCP connection lived through both, every request answered" "$(cat "$LAB_DIR/hold.log")" "^ok 50$"
packets=$(ctl status --json | jq '.ingresses[0].service_ips[0].packets')
if ((packets >= 4000)); then lab_pass "the XDP counters carried on ($packets packets)"; else lab_fail "the XDP counters carried on" "$packets"; fi

# A plain stop is the end: nothing stays.
status=0
lab_stop_daemon || status=$?
lab_expect "a plain stop exits 0" "$status" 0
lab_expect_no_match "... and removes the ingress netns" "$(ip netns list)" "^xdpfwd-hl( |$)"
lab_expect_no_match "... the XDP program" "$(lab_exec node1 ip -o link show eth0)" "prog/xdp"
if kill -0 "$inspector" 2>/dev/null; then lab_fail "... the inspector"; else lab_pass "... the inspector"; fi
if [[ -e $LAB_DIR/state.json || -e $LAB_PIN_DIR ]]; then lab_fail "... the state file and the pins"; else lab_pass "... the state file and the pins"; fi

lab_summary
