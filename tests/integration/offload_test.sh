#!/usr/bin/env bash
# Checksum offload: with TX and RX checksum offload on and off on every veth of the path (client,
# node1's NIC, the ingress veths, the underlay, the replicas'), in all four combinations, traffic
# through ingress "ofl" (client_ip nat, IPv4 and IPv6) and ingress "oflp" (client_ip preserve)
# is answered and nobody counts a checksum error: not the client, not the replicas, not the
# inspectors. With TX offload on, senders leave checksums for hardware to finish (and segment
# with TSO); nothing on an XDP path finishes them, so the inspector must.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init ofl
lab_up
lab_remote_overlay 4113
lab_remote_overlay 4114
lab_replica o1 4113 10.213.0.11/24 fd00:213::11/64
lab_replica op 4114 10.214.0.11/24 fd00:214::11/64
for replica in o1 op; do
  lab_bg "$replica" "$replica-udp" "$LAB_PEER" udp-echo :: 7 --name "$replica"
  # 256 KiB answers: with TSO on, the replica sends them as segments far over the MTU.
  lab_bg "$replica" "$replica-http" "$LAB_PEER" http-serve :: 80 --name "$replica" --body-size 262144
  lab_wait_for "$LAB_DIR/$replica-udp.log" listening 5
  lab_wait_for "$LAB_DIR/$replica-http.log" listening 5
done

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "ofl", "service_ips": [ "198.18.0.50", "fd00:18::50" ],
      "overlay": { "vni": 4113, "address": "10.213.0.1/24", "address6": "fd00:213::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "ofl-a", "replicas": [ { "address": "10.213.0.11" }, { "address": "fd00:213::11" } ] } ] },
    { "name": "oflp", "service_ips": [ "198.18.0.51", "fd00:18::51" ],
      "overlay": { "vni": 4114, "address": "10.214.0.1/24", "address6": "fd00:214::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "oflp-a", "client_ip": "preserve",
                      "replicas": [ { "address": "10.214.0.11" }, { "address": "fd00:214::11" } ] } ] }
  ]
}
EOF
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }

# Every namespace a frame crosses: the lab's and the two ingresses'.
namespaces=("$(lab_ns client)" "$(lab_ns node1)" "$(lab_ns node2)" "$(lab_ns o1)" "$(lab_ns op)" xdpfwd-ofl xdpfwd-oflp)
set_offload() { # tx on|off, rx on|off on every veth
  local netns device
  for netns in "${namespaces[@]}"; do
    for device in $(ip -n "$netns" -o link show type veth | awk -F': ' '{ print $2 }' | cut -d@ -f1); do
      lab_exec_netns "$netns" ethtool -K "$device" tx "$1" rx "$2" >/dev/null 2>&1 ||
        lab_exec_netns "$netns" ethtool -K "$device" tx "$1" rx "$2"
    done
  done
}
# Checksum errors counted by a namespace's stack: IPv4 header, TCP, UDP (v4), UDP (v6).
checksum_errors() {
  lab_exec_netns "$1" cat /proc/net/snmp /proc/net/snmp6 | awk '
    $1 == "Ip:" && $3 !~ /^[0-9]+$/ { for (i = 2; i <= NF; i++) ip[i] = $i; next }
    $1 == "Ip:" { for (i = 2; i <= NF; i++) if (ip[i] == "InHdrErrors") sum += $i; next }
    ($1 == "Tcp:" || $1 == "Udp:") && $2 !~ /^[0-9-]+$/ { for (i = 2; i <= NF; i++) name[$1, i] = $i; next }
    $1 == "Tcp:" || $1 == "Udp:" { for (i = 2; i <= NF; i++) if (name[$1, i] == "InCsumErrors") sum += $i; next }
    $1 == "Udp6InCsumErrors" || $1 == "Ip6InHdrErrors" { sum += $2 }
    END { print sum + 0 }'
}
inspector_checksum_drops() {
  ctl status --json | jq '[.ingresses[].inspector.drops | to_entries[] | select(.key | test("checksum")) | .value] | add // 0'
}
errors_everywhere() {
  local netns total=0
  for netns in "${namespaces[@]}"; do total=$((total + $(checksum_errors "$netns"))); done
  echo $((total + $(inspector_checksum_drops)))
}

for tx in on off; do
  for rx in on off; do
    set_offload "$tx" "$rx"
    before=$(errors_everywhere)
    answers=""
    for url in http://198.18.0.50/ "http://[fd00:18::50]/" http://198.18.0.51/ "http://[fd00:18::51]/"; do
      for _ in 1 2; do
        answers+="$(lab_exec client curl -sS --max-time 5 -o "$LAB_DIR/body" -w '%{http_code} %{size_download}' "$url" 2>&1 || true) "
        answers+="$(head -n1 "$LAB_DIR/body" 2>/dev/null || true)"$'\n'
      done
    done
    lab_expect "tx $tx rx $rx: 8 HTTP requests (v4, v6; nat, preserve) each get 256 KiB" \
      "$(grep -cE '^200 262144 o[1p] client=' <<<"$answers")" 8
    lab_expect_match "tx $tx rx $rx: nat shows the overlay address, preserve the client's" "$answers" \
      "o1 client=10\.213\.0\.1:.*"$'\n'".*o1 client=\[fd00:213::1\]:.*"$'\n'".*op client=198\.18\.1\.2:.*"$'\n'".*op client=\[fd00:1::2\]:"
    udp=""
    for address in 198.18.0.50 fd00:18::50 198.18.0.51 fd00:18::51; do
      for size in 32 1350; do
        udp+="$(lab_exec client "$LAB_PEER" udp-send "$address" 7 --count 20 --size "$size" --wait-ms 2000 | sed -n 1p)"$'\n'
      done
    done
    lab_expect "tx $tx rx $rx: 8 UDP flows (32 and 1350 bytes) all answered" "$(grep -c '^sent 20 received 20$' <<<"$udp")" 8
    lab_expect "tx $tx rx $rx: no checksum error anywhere (stacks of every netns, inspectors)" \
      "$(($(errors_everywhere) - before))" 0
  done
done
completed=$(ctl status --json | jq '[.ingresses[].inspector.checksums_completed // 0] | add')
if ((completed > 0)); then
  lab_pass "the inspectors finished checksums left partial by TX offload ($completed)"
else
  lab_fail "the inspectors finish checksums left partial by TX offload" "checksums_completed $completed"
fi

status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_summary
