#!/usr/bin/env bash
# The docker runtime on a two-node swarm: a private dockerd in the lab's node1 netns (manager,
# advertised on the underlay 198.18.2.1) and one in node2 (worker, 198.18.2.2), both from
# tests/lab/docker_lab.sh. xdpfwd (runtime docker) runs in node1 with ingress "mn" (VNI 4111,
# L4: one service); the replicas of Docker service mn-a are placed on node2 by a node label.
# Client HTTP to the service IP is answered by node2's replicas over the Swarm overlay across the
# underlay; scale 2 -> 4 brings node2's new tasks into the inspector within 2 s of their running;
# node loss (node2's engine, containerd, shims and containers SIGKILLed) takes node2's replicas
# out of the inspector within 2 s of Swarm marking the node down; labelled, node1 gets the
# rescheduled tasks, which the inspector follows and which answer; SIGTERM removes what the
# daemon made. Prints the figures (ms). Exit 77 (skipped, with the reason) when no dockerd can run.
set -euo pipefail
source "${LAB_SH:?}"
source "$(dirname "$LAB_SH")/docker_lab.sh"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${XDPFWD_INGRESS:?}" "${XDPFWD_SOURCE:?}"

docker_lab_skip_unless_possible
lab_init mn
lab_up
node1=$(lab_ns node1)
cleanup() {
  local status=$?
  docker_lab_down
  (exit "$status")
  lab_down
}
trap cleanup EXIT

docker_lab_add n1 node1 10.250.0.0/16
docker_lab_add n2 node2 10.249.0.0/16
docker_lab_start_or_skip n1
docker_lab_start_or_skip n2
lab_log "dockerd $(dke n1 version --format '{{.Server.Version}}') in $node1 and $(lab_ns node2)"

# The swarm over the underlay. A 1 s dispatcher heartbeat (default 5 s) lets the manager see a
# dead node within a few seconds, which keeps the test short; the figure is measured below.
dke n1 swarm init --advertise-addr 198.18.2.1 --listen-addr 198.18.2.1:2377 --default-addr-pool 10.251.0.0/16 \
  --dispatcher-heartbeat 1s >/dev/null 2>&1 || skip "docker swarm init fails here: $(tail -1 "$LAB_DIR/n1.log" | cut -c1-200)"
dke n2 swarm join --token "$(dke n1 swarm join-token -q worker)" --advertise-addr 198.18.2.2 \
  --listen-addr 198.18.2.2:2377 198.18.2.1:2377 >/dev/null 2>&1 ||
  skip "docker swarm join over the lab underlay fails here: $(tail -1 "$LAB_DIR/n2.log" | cut -c1-200)"
n1_id=$(dke n1 info -f '{{.Swarm.NodeID}}')
n2_id=$(dke n2 info -f '{{.Swarm.NodeID}}')
lab_expect "node2 is in the swarm, ready" "$(dke n1 node inspect -f '{{.Status.State}} {{.Status.Addr}}' "$n2_id")" \
  "ready 198.18.2.2"
# Both engines share the machine's hostname: the replicas' placement is by label.
dke n1 node update --label-add xdpfwd-mn=replicas "$n2_id" >/dev/null

docker_lab_replica_image n1
docker_lab_replica_image n2
docker_lab_ingress_image n1
# Service a's replicas answer with their container's name; a 0 s restart delay reschedules the
# tasks of a dead node at once, a short stop grace keeps the attachment quick (busybox httpd as
# PID 1 ignores SIGTERM).
dke n1 service create -d --quiet --name mn-a --replicas 2 --endpoint-mode dnsrr --no-resolve-image \
  --constraint node.labels.xdpfwd-mn==replicas --restart-delay 0s --stop-grace-period 1s --update-parallelism 0 \
  xdpfwd-e2e-replica:latest sh -c 'hostname > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null 2>&1

DOCKER_LAB_CONTROL=$LAB_DIR/n1/run/control.sock
config=$LAB_DIR/services.json
cat >"$config" <<EOF
{ "interfaces": [ { "name": "eth0" } ], "runtime": "docker",
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$DOCKER_LAB_CONTROL",
  "docker": { "socket": "$(docker_lab_sock n1)", "ingress_image": "xdpfwd-ingress:latest" },
  "ingresses": [ { "name": "mn", "service_ips": [ "198.18.0.20" ],
    "overlay": { "vni": 4111, "address": "10.211.0.1/24" },
    "services": [ { "name": "a", "docker_service": "mn-a" } ] } ] }
EOF
log=$LAB_DIR/daemon.log
docker_lab_start_xdpfwd "$config"
lab_pass "xdpfwd (runtime docker) is ready in $DOCKER_LAB_READY_S s"
net_id=$(dke n1 network inspect -f '{{.Id}}' xdpfwd-mn)

# tasks NODE_ID FIELD: of mn-a's tasks on that node that run, their address on the ingress's
# overlay (FIELD "address") or their container's name (FIELD "name", what they answer), sorted.
tasks() {
  local ids
  ids=$(dke n1 service ps -q --no-trunc -f desired-state=running -f node="$1" mn-a 2>/dev/null)
  [[ -n $ids ]] || return 0
  # shellcheck disable=SC2086 # one ID a word
  dke n1 inspect $ids | jq -r --arg net "$net_id" --arg field "$2" '.[] | select(.Status.State == "running") |
    if $field == "name" then .Status.ContainerStatus.ContainerID[0:12]
    else .NetworksAttachments[] | select(.Network.ID == $net) | .Addresses[] | sub("/.*"; "") end' | sort
}
# wait_tasks NODE_ID COUNT SECONDS: until COUNT of mn-a's tasks run there (attached to the overlay).
wait_tasks() {
  local deadline=$((SECONDS + $3))
  until [[ $(tasks "$1" address | grep -c .) == "$2" ]]; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}
# answers N: the distinct replica names among N client requests to the service IP.
answers() {
  for ((i = 0; i < $1; i++)); do
    lab_exec client curl -sS --max-time 3 http://198.18.0.20/ 2>/dev/null || true
  done | { grep -E '^[0-9a-f]{12}$' || true; } | sort -u
}
joined() { paste -sd, -; }

# The runtime attached mn-a to the overlay: its tasks are replaced, on node2 again.
wait_tasks "$n2_id" 2 90 || true
lab_expect_match "the inspector balances over 2 replicas of a" "$(wait_replicas a 2 30)" "^[0-9]+$"
lab_expect "... which are mn-a's running tasks on node2 (their overlay addresses)" "$(replicas a)" \
  "$(tasks "$n2_id" address | joined)"
lab_expect "... and none runs on node1" "$(tasks "$n1_id" address | grep -c . || true)" 0
names=$(answers 20)
lab_expect "20 client requests to 198.18.0.20 are answered by node2's 2 replicas, over the overlay across the underlay" \
  "$(joined <<<"$names")" "$(tasks "$n2_id" name | joined)"
underlay=$(nsenter --net="/run/netns/$node1" ip -s -j link show u0 | jq '.[0].stats64.tx.packets')
lab_expect_match "... (node1's underlay carried them: $underlay packets sent)" "$underlay" "^[1-9][0-9]*$"

# Scale 2 -> 4: node2's new tasks in rotation within 2 s of their running.
dke n1 service scale -d mn-a=4 >/dev/null 2>&1
wait_tasks "$n2_id" 4 60 || lab_fail "mn-a has 4 running tasks on node2" "$(dke n1 service ps mn-a 2>&1 | tail -5)"
took=$(wait_replicas a 4 10)
lab_log "scale up: node2's 4 tasks running -> 4 replicas in the inspector: $took ms"
lab_expect_match "scaling a to 4 puts node2's 4 tasks in the inspector within 2 s of their running (${took} ms)" \
  "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
lab_expect "... the 4 running tasks on node2" "$(replicas a)" "$(tasks "$n2_id" address | joined)"
lab_expect "40 client requests are answered by node2's 4 replicas" "$(answers 40 | joined)" "$(tasks "$n2_id" name | joined)"

# Node loss: node2's engine, its containerd, shims and containers die at once. Swarm notices when
# node2's heartbeats stop (the node event "down"), its orchestrator then shuts node2's tasks down
# (desired state) and starts replacements, pending, as no other node has the label.
on_node2=$(tasks "$n2_id" address | joined)
events=$LAB_DIR/node-events.log
docker -H "unix://$(docker_lab_sock n1)" events --since "$(date +%s)" --filter type=node --filter node="$n2_id" \
  --format '{{.TimeNano}} {{index .Actor.Attributes "state.new"}}' >"$events" 2>&1 &
LAB_PIDS+=("$!")
sleep 0.5
kill_ns=$(date +%s%N)
docker_lab_crash n2
out_ns="" tasks_ns=""
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)) && [[ -z $out_ns || -z $tasks_ns ]]; do
  if [[ -z $out_ns ]]; then
    list=$(replicas a)
    gone=1
    for address in ${on_node2//,/ }; do
      if [[ ,$list, == *",$address,"* ]]; then gone=0; fi
    done
    if ((gone)); then out_ns=$(date +%s%N); fi
  fi
  if [[ -z $tasks_ns && -z $(dke n1 service ps -q -f desired-state=running -f node="$n2_id" mn-a 2>/dev/null) ]]; then
    tasks_ns=$(date +%s%N)
  fi
  sleep 0.02
done
down_ns=$(awk '$2 == "down" { print $1; exit }' "$events")
ms() { if [[ -n $1 && -n $2 ]]; then echo $((($2 - $1) / 1000000)); else echo "?"; fi; }
kill_down=$(ms "$kill_ns" "$down_ns") down_tasks=$(ms "$down_ns" "$tasks_ns") down_out=$(ms "$down_ns" "$out_ns")
lab_log "node loss: kill -> node down (engine's event) $kill_down ms; node down -> tasks not desired running $down_tasks ms;" \
  "node down -> out of the inspector $down_out ms; kill -> out of the inspector $(ms "$kill_ns" "$out_ns") ms"
lab_expect "the manager marks node2 down (${kill_down} ms after the kill)" \
  "$(dke n1 node inspect -f '{{.Status.State}}' "$n2_id")" down
lab_expect_match "... and shuts its tasks down (${down_tasks} ms after)" "$down_tasks" "^-?[0-9]+$"
lab_expect_match "node2's replicas leave the inspector after node2 is down (${down_out} ms)" "$down_out" "^[0-9]+$"
[[ $down_out =~ ^[0-9]+$ ]] && ((down_out <= 2000)) || lab_fail "... within 2 s of Swarm marking it down" "took $down_out ms"
lab_expect "... none is left" "$(replicas a)" ""
no_replica() { ctl status --json | jq '[.ingresses[] | select(.name == "mn") | .inspector.drops.no_replica // 0] | add'; }
before=$(no_replica)
lab_expect "with no replica left a client request gets no answer" \
  "$(lab_exec client curl -sS --max-time 1 http://198.18.0.20/ >/dev/null 2>&1 && echo answered || echo none)" none
lab_expect "... dropped by the inspector as no_replica" "$(($(no_replica) > before))" 1

# Rescheduling: node1 gets the label, the pending tasks start there and the inspector follows.
dke n1 node update --label-add xdpfwd-mn=replicas "$n1_id" >/dev/null
wait_tasks "$n1_id" 4 60 || lab_fail "mn-a has 4 running tasks on node1" "$(dke n1 service ps mn-a 2>&1 | tail -5)"
took=$(wait_replicas a 4 10)
lab_log "rescheduled: node1's 4 tasks running -> 4 replicas in the inspector: $took ms"
lab_expect_match "the 4 tasks rescheduled onto node1 are in the inspector within 2 s of their running (${took} ms)" \
  "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
lab_expect "... node1's 4 running tasks" "$(replicas a)" "$(tasks "$n1_id" address | joined)"
lab_expect "40 client requests are answered by node1's 4 new replicas" "$(answers 40 | joined)" \
  "$(tasks "$n1_id" name | joined)"

# SIGTERM: the daemon removes its container, veth and the service's attachment.
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect "no container labelled xdpfwd.managed is left" "$(dke n1 ps -aq -f label=xdpfwd.managed=true | wc -l)" 0
lab_expect "the veth is removed" "$(ip -n "$node1" -br link show xf-mn 2>/dev/null | wc -l)" 0
lab_expect "service mn-a is detached from the overlay" \
  "$(dke n1 service inspect -f '{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}' mn-a | grep -c "$net_id" || true)" 0
if ((LAB_FAILED > 0)); then
  echo "--- daemon log (last 60 lines)" >&2
  tail -60 "$log" >&2
fi
lab_summary
