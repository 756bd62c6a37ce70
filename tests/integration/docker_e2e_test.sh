#!/usr/bin/env bash
# The docker runtime against a real engine: a private dockerd inside the lab's node1 netns (own
# data root, exec root and socket; --iptables=false; swarm on 127.0.0.1), the xdpfwd-ingress
# image built by docker/build-image, a busybox-static replica image from `docker import`, and two
# dnsrr services. The runtime pieces are driven by docker_runtime_driver (until the daemon runs
# `runtime: docker` itself): the overlay xdpfwd-waf (VNI 4101), the ingress container with its
# veth, service "a" attached by the runtime, service "b" created on the overlay; replicas follow
# scale 2 -> 4 and a killed task within 2 s; a killed ingress container is restarted and re-plumbed;
# on stop everything is removed. Exit 77 (skipped, with the reason) when no dockerd can run here.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD_DOCKER_DRIVER:?}" "${XDPFWD_INGRESS:?}" "${XDPFWD_SOURCE:?}"

skip() {
  echo "SKIP: $*"
  exit 77
}

if ! setup_log=$("$XDPFWD_SOURCE/scripts/setup-docker" 2>&1); then skip "cannot install docker.io: $(tail -1 <<<"$setup_log")"; fi
command -v dockerd >/dev/null || skip "no dockerd after scripts/setup-docker"
[[ -x /bin/busybox ]] || skip "no busybox-static"

lab_init dock
lab_up
node1=$(lab_ns node1)
D=$LAB_DIR/docker
SOCK=$D/docker.sock
DOCKERD_PID=""
DRIVER_PID=""
dk() { docker -H "unix://$SOCK" "$@"; }

docker_down() {
  set +e
  [[ -n $DRIVER_PID ]] && lab_stop "$DRIVER_PID" 30 >/dev/null 2>&1
  if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
    dk service rm $(dk service ls -q) >/dev/null 2>&1
    dk rm -f $(dk ps -aq) >/dev/null 2>&1
    dk swarm leave --force >/dev/null 2>&1
    lab_stop "$DOCKERD_PID" 30
  fi
  # containerd shims of this engine (their command lines name its exec root), then its mounts.
  local pid
  for pid in $(pgrep -f -- "$D/exec" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  awk -v root="$D" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null
  done
  rm -rf "$D"
}
cleanup() {
  local status=$?
  docker_down
  (exit "$status")
  lab_down
}
trap cleanup EXIT

# The engine: inside node1 only, with its own address pools in 10.x.
mkdir -p "$D/data" "$D/exec" "$D/run"
nsenter --net="/run/netns/$node1" -- dockerd --data-root "$D/data" --exec-root "$D/exec" -H "unix://$SOCK" \
  --pidfile "$D/dockerd.pid" --iptables=false --ip6tables=false --bridge=none \
  --default-address-pool base=10.250.0.0/16,size=24 >"$LAB_DIR/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 300); do
  dk version >/dev/null 2>&1 && break
  kill -0 "$DOCKERD_PID" 2>/dev/null || break
  sleep 0.2
done
if ! dk version >/dev/null 2>&1; then
  reason=$(grep -iE 'level=(error|fatal)|failed' "$LAB_DIR/dockerd.log" | tail -1 | cut -c1-200)
  tail -20 "$LAB_DIR/dockerd.log" >&2
  skip "dockerd cannot start here: ${reason:-no answer within 60 s}"
fi
lab_log "dockerd $(dk version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') in $node1"
dk swarm init --advertise-addr 127.0.0.1 --default-addr-pool 10.251.0.0/16 >/dev/null ||
  skip "docker swarm init fails here: $(tail -1 "$LAB_DIR/dockerd.log" | cut -c1-200)"

# Images, no registry: the replica from a busybox-static rootfs, the ingress from docker/.
rootfs=$D/rootfs
mkdir -p "$rootfs/bin" "$rootfs/www" "$rootfs/tmp"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh httpd hostname cat echo sleep; do ln -s busybox "$rootfs/bin/$applet"; done
tar -C "$rootfs" -c . | dk import - xdpfwd-e2e-replica:latest >/dev/null
"$XDPFWD_SOURCE/docker/build-image" --docker-host "unix://$SOCK" "$XDPFWD_INGRESS" 2>/dev/null
lab_expect "the ingress image is built locally" "$(dk image inspect -f '{{.Config.Entrypoint}}' xdpfwd-ingress:latest)" \
  "[/usr/sbin/xdpfwd-ingress]"

# Each replica answers with its own name.
replica_cmd=(sh -c 'hostname > /www/index.html && exec httpd -f -p 80 -h /www')
dk service create -d --quiet --name e2e-a --replicas 2 --endpoint-mode dnsrr xdpfwd-e2e-replica:latest \
  "${replica_cmd[@]}" >/dev/null 2>&1

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{ "interfaces": [ { "name": "eth0" } ], "runtime": "docker",
  "control_socket": "$D/run/control.sock",
  "docker": { "socket": "$SOCK" },
  "ingresses": [ { "name": "waf", "service_ips": [ "198.18.0.10" ],
    "overlay": { "vni": 4101, "address": "10.201.0.1/24" },
    "domain_routing": { "http_ports": [ 80 ], "unknown_domain": "reject" },
    "services": [ { "name": "a", "domains": [ "a.example.test" ], "docker_service": "e2e-a" },
                  { "name": "b", "domains": [ "b.example.test" ], "docker_service": "e2e-b" } ] } ] }
EOF
out=$LAB_DIR/driver.out
nsenter --net="/run/netns/$node1" -- "$XDPFWD_DOCKER_DRIVER" --config "$config" --socket "$SOCK" --run-dir "$D/run" \
  >"$out" 2>"$LAB_DIR/driver.err" &
DRIVER_PID=$!

# wait_line PATTERN SECONDS: waits for a driver line; prints how long it took (ms).
wait_line() {
  local pattern=$1 seconds=$2 start
  start=$(date +%s%N)
  for ((i = 0; i < seconds * 20; i++)); do
    if grep -q -- "$pattern" "$out"; then
      echo $((($(date +%s%N) - start) / 1000000))
      return
    fi
    kill -0 "$DRIVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo timeout
}
if [[ $(wait_line '^endpoint waf ' 60) == timeout ]]; then
  lab_fail "the runtime starts ingress waf" "$(tail -5 "$LAB_DIR/driver.err" | tr '\n' '|')"
  if ((LAB_FAILED > 0)); then
  echo "--- driver output" >&2; cat "$out" >&2
  echo "--- driver log (last 30 lines)" >&2; tail -30 "$LAB_DIR/driver.err" >&2
fi
lab_summary
  exit 1
fi
lab_pass "the runtime starts ingress waf: $(grep '^endpoint waf' "$out")"

net_id=$(dk network inspect -f '{{.Id}}' xdpfwd-waf)
lab_expect "overlay xdpfwd-waf has VNI 4101" \
  "$(dk network inspect -f '{{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}' xdpfwd-waf)" 4101
lab_expect "overlay xdpfwd-waf is labelled" "$(dk network inspect -f '{{index .Labels "xdpfwd.managed"}}' xdpfwd-waf)" true
pid=$(dk inspect -f '{{.State.Pid}}' xdpfwd-ingress-waf)
in_ingress() { nsenter --net="/proc/$pid/ns/net" -- "$@"; }
lab_expect_match "svc0 in the ingress container holds the service IP" "$(in_ingress ip -br addr show svc0)" "198\.18\.0\.10/32"
lab_expect_match "eth0 in the ingress container is Docker's overlay endpoint at 10.201.0.1" \
  "$(in_ingress ip -br addr show eth0)" "10\.201\.0\.1/24"
lab_expect_match "the service IP is routed to the host veth xf-waf" "$(ip -n "$node1" route show 198.18.0.10)" "dev xf-waf"
lab_expect_match "the client reaches the service IP through the veth into the container" \
  "$(lab_exec client ping -c 2 -W 2 198.18.0.10 2>&1)" " 0% packet loss"

# Service a was attached to the overlay by the runtime: its tasks are replaced, then followed.
took=$(wait_line '^replicas a 2 10\.201\.0\.' 60)
lab_expect_match "service a (attached by the runtime) reports 2 replicas on the overlay" "$took" "^[0-9]+$"
addresses=$(grep '^replicas a 2 ' "$out" | tail -1 | cut -d' ' -f4 | tr ',' ' ')
for address in $addresses; do
  lab_expect_match "replica $address answers over the overlay from the ingress container" \
    "$(in_ingress curl -sS --max-time 5 "http://$address/" 2>&1)" "^[0-9a-f]{12}$"
done

# Service b made on the overlay from the start.
dk service create -d --quiet --name e2e-b --replicas 1 --endpoint-mode dnsrr --network xdpfwd-waf \
  xdpfwd-e2e-replica:latest "${replica_cmd[@]}" >/dev/null 2>&1
lab_expect_match "service b (created on the overlay) reports 1 replica" "$(wait_line '^replicas b 1 10\.201\.0\.' 60)" "^[0-9]+$"

# Scale a 2 -> 4: in the list within 2 s of the tasks running.
dk service scale -d e2e-a=4 >/dev/null 2>&1
for _ in $(seq 300); do
  [[ $(dk service ps e2e-a -f desired-state=running --format '{{.CurrentState}}' | grep -c '^Running') == 4 ]] && break
  sleep 0.1
done
took=$(wait_line '^replicas a 4 ' 10)
lab_expect_match "scaling a to 4 brings 4 replicas within 2 s of their tasks running (${took} ms)" "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
addresses=$(grep '^replicas a 4 ' "$out" | tail -1 | cut -d' ' -f4 | tr ',' ' ')
answered=0
for address in $addresses; do in_ingress curl -sS --max-time 5 "http://$address/" >/dev/null 2>&1 && answered=$((answered + 1)); done
lab_expect "all 4 replicas of a answer over the overlay" "$answered" 4

# Kill one task's container: out of the list within 2 s.
victim=$(dk ps -q -f label=com.docker.swarm.service.name=e2e-a | head -1)
victim_address=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$victim" | tr ' ' '\n' | grep '^10\.201\.' || true)
lines_before=$(wc -l <"$out")
start=$(date +%s%N)
dk kill "$victim" >/dev/null
took=timeout
for _ in $(seq 50); do
  if tail -n +"$((lines_before + 1))" "$out" | grep '^replicas a ' | grep -vq "[ ,]$victim_address\(,\|$\)"; then
    took=$((($(date +%s%N) - start) / 1000000))
    break
  fi
  sleep 0.05
done
lab_expect_match "a killed task ($victim_address) leaves the list within 2 s (${took} ms)" "$took" "^[0-9]+$"
[[ $took != timeout ]] && ((took <= 2000)) || lab_fail "... within 2 s" "took $took ms"
lab_expect_match "swarm replaces it and the list is back to 4" "$(wait_line '^replicas a 4 ' 30)" "^[0-9]+$"

# A dead ingress container is restarted by Docker and re-plumbed by the runtime.
dk kill xdpfwd-ingress-waf >/dev/null
lab_expect_match "the killed ingress container is restarted and its veth re-plumbed" "$(wait_line '^repaired waf ' 30)" "^[0-9]+$"
pid=$(dk inspect -f '{{.State.Pid}}' xdpfwd-ingress-waf)
lab_expect_match "the service IP answers again after the restart" \
  "$(lab_exec client ping -c 2 -W 2 198.18.0.10 2>&1)" " 0% packet loss"

# Stop: everything the runtime made is removed; service a is detached again.
lab_stop "$DRIVER_PID" 60
DRIVER_PID=""
lab_expect "the ingress container is removed" "$(dk ps -aq -f name=xdpfwd-ingress-waf | wc -l)" 0
lab_expect "the veth is removed" "$(ip -n "$node1" -br link show xf-waf 2>/dev/null | wc -l)" 0
lab_expect "service a is detached from the overlay" \
  "$(dk service inspect -f '{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}' e2e-a | grep -c "$net_id" || true)" 0
if ((LAB_FAILED > 0)); then
  echo "--- driver output" >&2; cat "$out" >&2
  echo "--- driver log (last 30 lines)" >&2; tail -30 "$LAB_DIR/driver.err" >&2
fi
lab_summary
