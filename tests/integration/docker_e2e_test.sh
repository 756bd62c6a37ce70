#!/usr/bin/env bash
# The docker runtime against a real engine: a private dockerd inside the lab's node1 netns (own
# data root, exec root and socket; --iptables=false; swarm on 127.0.0.1), the xdpfwd-ingress
# image built by docker/build-image, a busybox-static replica image from `docker import`, and two
# dnsrr services. The daemon (xdpfwd, runtime "docker") runs in node1: the overlay xdpfwd-waf
# (VNI 4101), the ingress container with its veth, service "a" attached by the runtime, service
# "b" created on the overlay. Client HTTP to the service IP reaches the replicas over the overlay,
# routed by Host; ingress "l4" (VNI 4102) forwards service "c" at L4, 256 KiB answers included;
# the inspector's replicas follow scale 2 -> 4 and a killed task within 2 s; a
# killed ingress container is restarted, re-plumbed and configured again; so is it after the
# engine itself restarted, and traffic reaches the new tasks; a restart of xdpfwd
# (prepare-restart) leaves the container forwarding and the next daemon adopts it; a drained task
# takes no new connections; SIGTERM removes all the
# daemon made. Exit 77 (skipped, with the reason) when no dockerd can run here.
set -euo pipefail
source "${LAB_SH:?}"
source "$(dirname "$LAB_SH")/docker_lab.sh"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${XDPFWD_INGRESS:?}" "${XDPFWD_SOURCE:?}"

docker_lab_skip_unless_possible

lab_init dock
lab_up
node1=$(lab_ns node1)
D=$LAB_DIR/docker
dk() { dke docker "$@"; }
cleanup() {
  local status=$?
  docker_lab_down
  (exit "$status")
  lab_down
}
trap cleanup EXIT

# The engine: inside node1 only, with its own address pools in 10.x.
docker_lab_add docker node1 10.250.0.0/16
docker_lab_start_or_skip docker
lab_log "dockerd $(dk version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') in $node1"
dk swarm init --advertise-addr 127.0.0.1 --default-addr-pool 10.251.0.0/16 >/dev/null ||
  skip "docker swarm init fails here: $(tail -1 "$LAB_DIR/docker.log" | cut -c1-200)"

# Images, no registry: the replica from a busybox-static rootfs, the ingress from docker/.
docker_lab_replica_image docker
docker_lab_ingress_image docker
lab_expect "the ingress image is built locally" "$(dk image inspect -f '{{.Config.Entrypoint}}' xdpfwd-ingress:latest)" \
  "[/usr/sbin/xdpfwd-ingress]"

# Each replica answers with its own name.
replica_cmd=(sh -c 'hostname > /www/index.html && exec httpd -f -p 80 -h /www')
# busybox httpd as PID 1 ignores SIGTERM: a short stop grace and updates of all tasks at once keep
# the attachment (and the detachment on stop, before the overlay can go) quick.
dk service create -d --quiet --name e2e-a --replicas 2 --endpoint-mode dnsrr --stop-grace-period 1s \
  --update-parallelism 0 xdpfwd-e2e-replica:latest \
  "${replica_cmd[@]}" >/dev/null 2>&1
# Service c, alone behind ingress l4, so forwarded at L4 (NAT, no proxy). Its replicas also serve
# 256 KiB, which their veths (TSO and checksum offload on, Docker's defaults) send as segments far
# over the MTU with partial checksums.
dk service create -d --quiet --name e2e-c --replicas 2 --endpoint-mode dnsrr --stop-grace-period 1s \
  --update-parallelism 0 xdpfwd-e2e-replica:latest \
  sh -c 'hostname > /www/index.html && head -c 262144 /dev/zero > /www/big && exec httpd -f -p 80 -h /www' >/dev/null 2>&1

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{ "interfaces": [ { "name": "eth0" } ], "runtime": "docker",
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$D/run/control.sock",
  "docker": { "socket": "$(docker_lab_sock docker)", "ingress_image": "xdpfwd-ingress:latest" },
  "ingresses": [ { "name": "waf", "service_ips": [ "198.18.0.10" ],
    "overlay": { "vni": 4101, "address": "10.201.0.1/24" },
    "domain_routing": { "http_ports": [ 80 ], "unknown_domain": "reject" },
    "services": [ { "name": "a", "domains": [ "a.example.test" ], "docker_service": "e2e-a" },
                  { "name": "b", "domains": [ "b.example.test" ], "docker_service": "e2e-b" } ] },
    { "name": "l4", "service_ips": [ "198.18.0.11" ],
      "overlay": { "vni": 4102, "address": "10.202.0.1/24" },
      "services": [ { "name": "c", "docker_service": "e2e-c" } ] } ] }
EOF
log=$LAB_DIR/daemon.log
DOCKER_LAB_CONTROL=$D/run/control.sock
docker_lab_start_xdpfwd "$config"
lab_pass "xdpfwd (runtime docker) is ready in $DOCKER_LAB_READY_S s"

# answers HOST N: the distinct replica names among N client requests to the service IP.
answers() {
  for ((i = 0; i < $2; i++)); do
    lab_exec client curl -sS --max-time 3 -H "Host: $1" http://198.18.0.10/ 2>/dev/null || true
  done | { grep -E '^[0-9a-f]{12}$' || true; } | sort -u
}

net_id=$(dk network inspect -f '{{.Id}}' xdpfwd-waf)
lab_expect "overlay xdpfwd-waf has VNI 4101" \
  "$(dk network inspect -f '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}' xdpfwd-waf)" 4101
lab_expect "overlay xdpfwd-waf is labelled" "$(dk network inspect -f '{{index .Labels "xdpfwd.managed"}}' xdpfwd-waf)" true
lab_expect "the ingress container is labelled" "$(dk inspect -f '{{index .Config.Labels "xdpfwd.ingress"}}' xdpfwd-ingress-waf)" waf
pid=$(dk inspect -f '{{.State.Pid}}' xdpfwd-ingress-waf)
in_ingress() { nsenter --net="/proc/$pid/ns/net" -- "$@"; }
lab_expect_match "svc0 in the ingress container holds the service IP" "$(in_ingress ip -br addr show svc0)" "198\.18\.0\.10/32"
lab_expect_match "eth0 in the ingress container is Docker's overlay endpoint at 10.201.0.1" \
  "$(in_ingress ip -br addr show eth0)" "10\.201\.0\.1/24"
lab_expect_match "the service IP is routed to the host veth xf-waf" "$(ip -n "$node1" route show 198.18.0.10)" "dev xf-waf"
lab_expect_match "xdpfwdctl status names the ingress's container" \
  "$(ctl status --json | jq -r '.ingresses[] | select(.name == "waf") | .netns')" "^xdpfwd-ingress-waf$"

# Service a was attached to the overlay by the runtime: its new tasks reach the inspector.
took=$(wait_replicas a 2 90)
lab_expect_match "the inspector balances over the 2 replicas of a (status)" "$took" "^[0-9]+$"
lab_expect_match "the replicas of a are on the overlay" "$(replicas a)" "^10\.201\.0\.[0-9]+,10\.201\.0\.[0-9]+$"
# Service b made on the overlay after the daemon started. With two services the inspector routes
# port 80 by Host through its proxy (ingress l4, with one service, forwards at L4: below).
dk service create -d --quiet --name e2e-b --replicas 1 --endpoint-mode dnsrr --network xdpfwd-waf \
  xdpfwd-e2e-replica:latest "${replica_cmd[@]}" >/dev/null 2>&1
lab_expect_match "service b (created on the overlay) reaches the inspector with 1 replica" "$(wait_replicas b 1 60)" "^[0-9]+$"
for _ in $(seq 100); do
  [[ $(ctl status --json | jq '.ingresses[] | select(.name == "waf") | .inspector.proxy.listeners | length') -ge 1 ]] && break
  sleep 0.1
done
names_a=$(answers a.example.test 20)
lab_expect "client HTTP to the service IP (Host a.example.test) reaches both replicas of a over the overlay" \
  "$(grep -c . <<<"$names_a" || true)" 2
if [[ $(grep -c . <<<"$names_a" || true) != 2 ]]; then
  echo "--- one request, verbose" >&2
  lab_exec client curl -sv --max-time 3 -H "Host: a.example.test" http://198.18.0.10/ >&2 || true
  echo "--- inspector status" >&2
  ctl status --json | jq -c '.ingresses[] | select(.name == "waf")' >&2 || true
  in_ingress ip neigh >&2 || true
  in_ingress ss -ltn >&2 || true
  grep -v "does not exist (yet)" "$log" | tail -30 >&2
  dk logs xdpfwd-ingress-waf 2>&1 | tail -30 >&2
fi
lab_expect_match "an unknown Host is refused by the ingress (421)" \
  "$(lab_exec client curl -sS --max-time 3 -o /dev/null -w '%{http_code}' -H 'Host: nope.example.test' http://198.18.0.10/ 2>&1 || true)" "^421$"

names_b=$(answers b.example.test 5)
lab_expect "Host b.example.test reaches b's single replica" "$(grep -c . <<<"$names_b" || true)" 1
lab_expect "b's replica is none of a's" "$(comm -12 <(echo "$names_a") <(echo "$names_b") | grep -c . || true)" 0

# Ingress l4: one service, so the inspector forwards at L4 over its own overlay (VNI 4102).
lab_expect_match "service c (attached by the runtime) reaches ingress l4's inspector with 2 replicas" \
  "$(wait_replicas c 2 60)" "^[0-9]+$"
lab_expect_match "... on l4's own overlay" "$(replicas c)" "^10\.202\.0\.[0-9]+,10\.202\.0\.[0-9]+$"
names_c=$(for _ in $(seq 20); do lab_exec client curl -sS --max-time 3 http://198.18.0.11/ 2>/dev/null || true; done |
  { grep -E '^[0-9a-f]{12}$' || true; } | sort -u)
lab_expect "L4: 20 client HTTP requests to 198.18.0.11 are answered by both replicas of c" "$(grep -c . <<<"$names_c" || true)" 2
big=""
for _ in 1 2 3 4; do big+="$(lab_exec client curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' http://198.18.0.11/big 2>&1 || true)"$'\n'; done
lab_expect "L4: 4 downloads of 256 KiB from c's replicas (TSO, partial checksums) complete" "$(grep -c '^200 262144$' <<<"$big")" 4

# Scale a 2 -> 4: in rotation within 2 s of the tasks running.
dk service scale -d e2e-a=4 >/dev/null 2>&1
for _ in $(seq 300); do
  [[ $(dk service ps e2e-a -f desired-state=running --format '{{.CurrentState}}' | grep -c '^Running') == 4 ]] && break
  sleep 0.1
done
took=$(wait_replicas a 4 10)
lab_expect_match "scaling a to 4 puts 4 replicas in the inspector within 2 s of their tasks running (${took} ms)" "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
lab_expect "40 client requests are answered by 4 distinct replicas of a" "$(answers a.example.test 40 | grep -c . || true)" 4

# Kill one task's container: out of the inspector's list within 2 s.
victim=$(dk ps -q -f label=com.docker.swarm.service.name=e2e-a | head -1)
victim_address=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$victim" | tr ' ' '\n' | grep '^10\.201\.' || true)
start=$(date +%s%N)
dk kill "$victim" >/dev/null
took=timeout
for _ in $(seq 100); do
  list=$(replicas a)
  if [[ -n $list && ,$list, != *",$victim_address,"* ]]; then
    took=$((($(date +%s%N) - start) / 1000000))
    break
  fi
  sleep 0.05
done
lab_expect_match "a killed task ($victim_address) leaves the inspector's list within 2 s (${took} ms)" "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
lab_expect_match "swarm replaces it and the inspector has 4 again" "$(wait_replicas a 4 30)" "^[0-9]+$"

# A dead ingress container is restarted by Docker, re-plumbed and configured by the daemon.
configured_before=$(grep -c "inspector configured in container" "$log" || true)
dk kill xdpfwd-ingress-waf >/dev/null
for _ in $(seq 600); do
  (($(grep -c "inspector configured in container" "$log" || true) > configured_before)) && grep -q "its container died" "$log" && break
  sleep 0.05
done
lab_expect_match "the daemon sees the ingress container die and configures its new inspector" \
  "$(grep "its container died" "$log" | tail -1)" "waf"
lab_expect "after the restart client requests still reach a's 4 replicas" "$(answers a.example.test 40 | grep -c . || true)" 4

# The engine restarts. Without live-restore (which Swarm mode refuses) it stops every container on
# the way down, the ingress's included. xdpfwd keeps running with its XDP program attached; when the
# engine answers again it restarts the ingress container, re-plumbs and configures it, and follows
# the tasks Swarm starts anew.
configured_before=$(grep -c "inspector configured in container" "$log" || true)
docker_lab_stop docker
lab_expect "the engine stopped" "$(docker_lab_running docker && echo running || echo stopped)" stopped
if docker_lab_start docker; then lab_pass "the engine is started again"; else lab_fail "the engine is started again" "$(tail -3 "$LAB_DIR/docker.log")"; fi
for _ in $(seq 1200); do
  (($(grep -c "inspector configured in container" "$log" || true) > configured_before)) && break
  sleep 0.05
done
lab_expect_match "the daemon repairs the ingress once the engine is back" \
  "$(grep -A3 "the engine is back" "$log" | tr '\n' '|')" "ingress waf: the engine is back"
lab_expect "xdpfwd kept running through the engine's restart" "$(kill -0 "$LAB_DAEMON_PID" 2>/dev/null && echo yes)" yes
lab_expect_match "the XDP program stayed on the NIC" "$(ip -n "$node1" -d link show eth0)" "prog/xdp id"
lab_expect_match "swarm starts a's tasks again and the inspector follows (4 replicas)" "$(wait_replicas a 4 60)" "^[0-9]+$"
names_after=""
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
  names_after=$(answers a.example.test 40)
  (($(grep -c . <<<"$names_after" || true) == 4)) && break
  sleep 0.2
done
lab_expect "after the engine's restart client requests reach a's 4 replicas" "$(grep -c . <<<"$names_after" || true)" 4

# A restart of xdpfwd itself (prepare-restart, stop, start): the ingress container, its veth and
# overlay stay and forward while no daemon runs; the next daemon adopts them.
container=$(dk inspect -f '{{.Id}}' xdpfwd-ingress-waf)
lab_expect_match "xdpfwdctl prepare-restart" "$(ctl prepare-restart)" "keeps forwarding"
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 when stopped for a restart" "$status" 0
lab_expect "... the ingress container keeps running" "$(dk inspect -f '{{.State.Running}}' xdpfwd-ingress-waf)" true
lab_expect "... and requests reach a's 4 replicas while no daemon runs" "$(answers a.example.test 40 | grep -c . || true)" 4
lines=$(wc -l <"$log")
docker_lab_start_xdpfwd "$config"
lab_expect_match "the next daemon takes over the running container and its veth" "$(tail -n +"$((lines + 1))" "$log")" \
  "ingress waf: took over container xdpfwd-ingress-waf \(pid [0-9]+\) and veth xf-waf of the previous run"
lab_expect "... the same one" "$(dk inspect -f '{{.Id}}' xdpfwd-ingress-waf)" "$container"
lab_expect_match "... and follows a's 4 replicas" "$(wait_replicas a 4 30)" "^[0-9]+$"
lab_expect "requests reach a's 4 replicas after the restart" "$(answers a.example.test 40 | grep -c . || true)" 4

# Drain one of a's tasks: no new connections go to it; undrained, it takes them again.
drained=$(replicas a | cut -d, -f1)
lab_expect_match "xdpfwdctl drain a task of a" "$(ctl drain waf a "$drained" 2>&1)" "drain"
lab_expect "requests reach the 3 other replicas only" "$(answers a.example.test 40 | grep -c . || true)" 3
ctl undrain waf a "$drained" >/dev/null
lab_expect "undrained, requests reach all 4 again" "$(answers a.example.test 40 | grep -c . || true)" 4

# SIGTERM: the daemon removes its containers and networks; service a is detached again. Service b
# was made on the overlay by hand: it goes first, or the overlay stays in use.
dk service rm e2e-b >/dev/null
for _ in $(seq 200); do
  [[ -z $(dk ps -aq -f label=com.docker.swarm.service.name=e2e-b) ]] && break
  sleep 0.1
done
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect "service c is detached from l4's overlay" \
  "$(dk service inspect -f '{{len .Spec.TaskTemplate.Networks}}' e2e-c 2>/dev/null)" 0
lab_expect "no container labelled xdpfwd.managed is left" "$(dk ps -aq -f label=xdpfwd.managed=true | wc -l)" 0
# The swarm forgets a removed overlay a moment later.
for _ in $(seq 100); do
  [[ -z $(dk network ls -q -f label=xdpfwd.managed=true) ]] && break
  sleep 0.1
done
lab_expect "no network labelled xdpfwd.managed is left" "$(dk network ls -q -f label=xdpfwd.managed=true | wc -l)" 0
lab_expect "the veth is removed" "$(ip -n "$node1" -br link show xf-waf 2>/dev/null | wc -l)" 0
lab_expect "service a is detached from the overlay" \
  "$(dk service inspect -f '{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}' e2e-a | grep -c "$net_id" || true)" 0
if ((LAB_FAILED > 0)); then
  echo "--- daemon log (last 60 lines)" >&2; tail -60 "$log" >&2
fi
lab_summary
