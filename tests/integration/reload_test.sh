#!/usr/bin/env bash
# Reloads under steady traffic. Ingress "rl" carries a paced UDP stream the whole time while the
# config file changes under the daemon: ingress "old" is removed, "new" added and rl gains a
# replica (inotify); a file of garbage, an empty file and a deleted file are rejected (the
# running configuration stays); SIGHUP and `xdpfwdctl reload` reload too. rl must lose no
# datagram, counted at the client and at the replica.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init reld
lab_up
for vni in 4103 4104 4105; do lab_remote_overlay "$vni"; done
lab_replica r1 4103 10.203.0.11/24
lab_replica r2 4103 10.203.0.12/24
lab_replica o1 4104 10.204.0.11/24
lab_replica n1 4105 10.205.0.11/24
declare -A echo_pid
for replica in r1 r2 o1 n1; do
  lab_bg "$replica" "$replica-udp" "$LAB_PEER" udp-echo :: 7 --name "$replica"
  echo_pid[$replica]=$LAB_LAST_PID
done
for replica in r1 r2 o1 n1; do lab_wait_for "$LAB_DIR/$replica-udp.log" listening 5; done

config=$LAB_DIR/services.json
# write_config INGRESS_JSON...: the whole file, replaced at once as config managers do.
write_config() {
  local ingresses
  ingresses=$(IFS=,; echo "$*")
  cat >"$config.new" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [ $ingresses ]
}
EOF
  mv "$config.new" "$config"
}
ingress() { # NAME SERVICE_IP VNI REPLICA...
  local name=$1 ip=$2 vni=$3
  shift 3
  local replicas="" replica
  for replica in "$@"; do replicas+="${replicas:+, }{ \"address\": \"$replica\" }"; done
  echo "{ \"name\": \"$name\", \"service_ips\": [ \"$ip\" ],
          \"overlay\": { \"vni\": $vni, \"address\": \"10.$((vni - 3900)).0.1/24\", \"remote_vteps\": [ \"198.18.2.2\" ] },
          \"services\": [ { \"name\": \"$name-a\", \"replicas\": [ $replicas ] } ] }"
}
sed_ip() { echo "10.$(($1 - 3900)).0.$2"; } # VNI 4103 -> overlay 10.203.0.x

write_config "$(ingress rl 198.18.0.30 4103 "$(sed_ip 4103 11)")" "$(ingress old 198.18.0.31 4104 "$(sed_ip 4104 11)")"
LAB_EXTRA_NETNS+=(xdpfwd-new) # made by a reload, removed by lab_down if the daemon could not
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
generation() { ctl status --json | jq -r .generation; }
reloads() { grep -c "reload (.*): generation .* in place\|reload (.*) rejected" "$LAB_DIR/daemon.log" || true; }
wait_reload() { # waits until the daemon logged one more reload outcome than $1
  local waited=0
  until (($(reloads) > $1)) || ((waited++ > 100)); do sleep 0.1; done
}

out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.31 7 --count 10 --wait-ms 2000)
lab_expect_match "ingress old answers before the reload" "$out" "^from o1: 10$"

# A steady stream to rl: 4000 datagrams, one per millisecond, over the whole test.
lab_bg client stream "$LAB_PEER" udp-send 198.18.0.30 7 --count 4000 --gap-us 1000 --wait-ms 3000
stream_pid=$LAB_LAST_PID
sleep 0.5

# inotify: old goes, new comes, rl gets a second replica (its flow stays on r1).
before=$(reloads)
write_config "$(ingress rl 198.18.0.30 4103 "$(sed_ip 4103 11)" "$(sed_ip 4103 12)")" \
  "$(ingress new 198.18.0.32 4105 "$(sed_ip 4105 11)")"
wait_reload "$before"
log=$(cat "$LAB_DIR/daemon.log")
lab_expect_match "a changed file is reloaded by itself" "$log" "reload \(the config file changed\): generation 2 in place"
lab_expect_match "... ingress old removed" "$log" "reload \(the config file changed\): ingress old removed"
lab_expect_match "... ingress new added" "$log" "reload \(the config file changed\): ingress new added"
lab_expect_match "... ingress rl reconfigured in place" "$log" "reload \(the config file changed\): ingress rl reconfigured"
lab_expect_no_match "ingress old's netns is gone" "$(ip netns list)" "^xdpfwd-old( |$)"
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.32 7 --count 10 --wait-ms 2000)
lab_expect_match "ingress new answers" "$out" "^from n1: 10$"
lab_expect "the replica list of rl has two replicas now" \
  "$(ctl status --json | jq '.ingresses[] | select(.name == "rl") | .inspector.services[0].replicas | length')" 2

# Bad files are rejected; what runs stays.
good=$(cat "$config")
for bad in garbage empty deleted; do
  before=$(reloads)
  case $bad in
  garbage) echo '{ "interfaces": [ { "name": "eth0" ], "ingresses": ' >"$config" ;;
  empty) : >"$config" ;;
  deleted) rm "$config" ;;
  esac
  wait_reload "$before"
  lab_expect_match "a $bad config file is rejected, the running one stays" "$(tail -n 3 "$LAB_DIR/daemon.log")" \
    "reload \(the config file changed\) rejected: .* the running configuration \(generation 2\) stays"
done
out=$(ctl reload 2>&1 || true)
lab_expect_match "xdpfwdctl reload reports why a reload is refused" "$out" "^xdpfwdctl: .*services.json"
lab_expect_match "... and that nothing changed" "$out" "^generation 2 \(reload rejected\)$"
echo "$good" >"$config.new" && mv "$config.new" "$config"
sleep 0.5
before=$(reloads)
kill -HUP "$LAB_DAEMON_PID"
sleep 1
lab_expect_match "SIGHUP with an unchanged file changes nothing" "$(tail -n 2 "$LAB_DIR/daemon.log")" "reload \(SIGHUP\): no change"
lab_expect "the generation is still 2" "$(generation)" 2

# The stream: nothing lost, at the client and at the replica.
wait "$stream_pid" || true
out=$(cat "$LAB_DIR/stream.log")
lab_expect_match "rl lost no datagram through every reload" "$out" "^sent 4000 received 4000$"
lab_expect_match "... all answered by r1: the flow stayed on its replica" "$out" "^from r1: 4000$"
lab_stop "${echo_pid[r1]}" 5 || true
lab_expect_match "r1 received each of the 4000 exactly once" "$(cat "$LAB_DIR/r1-udp.log")" "^received 4000$"
lab_bg r1 r1-udp-again "$LAB_PEER" udp-echo :: 7 --name r1
lab_wait_for "$LAB_DIR/r1-udp-again.log" listening 5

# Drain: the replica of a running flow takes no new flows, while that flow goes on to the end.
# The stream's replica is the one whose count of active flows grows when it starts (earlier flows
# of this test are still in the table).
flows() { ctl status --json | jq -r '.ingresses[] | select(.name == "rl") | .inspector.services[0].replicas[] | "\(.address) \(.active_flows)"' | sort; }
flows_before=$(flows)
lab_bg client stream2 "$LAB_PEER" udp-send 198.18.0.30 7 --count 2000 --gap-us 1000 --wait-ms 3000
stream2_pid=$LAB_LAST_PID
sleep 0.3
busy=$(join <(echo "$flows_before") <(flows) | awk '$3 > $2 { print $1 }')
other=$([[ $busy == 10.203.0.11 ]] && echo 10.203.0.12 || echo 10.203.0.11)
out=$(ctl drain rl rl-a "$busy")
lab_expect_match "xdpfwdctl drain" "$out" "drained$"
lab_expect "... the drained replica shows weight 0" \
  "$(ctl status --json | jq --arg a "$busy" '.ingresses[] | select(.name == "rl") | .inspector.services[0].replicas[] | select(.address == $a) | .weight')" 0
new_flows=""
for _ in $(seq 6); do new_flows+="$(lab_exec client "$LAB_PEER" udp-send 198.18.0.30 7 --count 5 --wait-ms 2000)"$'\n'; done
busy_name=$([[ $busy == 10.203.0.11 ]] && echo r1 || echo r2)
other_name=$([[ $busy == 10.203.0.11 ]] && echo r2 || echo r1)
lab_expect "6 new flows all go to the other replica ($other)" "$(grep -c "^from $other_name: 5$" <<<"$new_flows")" 6
wait "$stream2_pid" || true
lab_expect_match "the established flow finished on the drained replica, nothing lost" "$(cat "$LAB_DIR/stream2.log")" \
  "^from $busy_name: 2000$"
out=$(ctl undrain rl rl-a "$busy")
lab_expect_match "xdpfwdctl undrain" "$out" "undrained$"
out=$(ctl drain rl rl-a 10.203.0.99 2>&1 || true)
lab_expect_match "draining a replica the service does not have is refused, by name" "$out" 'no replica "10.203.0.99"'

lab_summary
