# Private Docker engines inside the lab's node namespaces, sourced after lab.sh by the Docker
# runtime's tests. Each engine has its own data root, exec root, socket and address pool under
# $LAB_DIR/<engine>, runs with --iptables=false --bridge=none in one node netns only (nsenter
# --net, not `ip netns exec`: dockerd needs the host's cgroup mounts), and is ended by PID.
#
#   docker_lab_skip_unless_possible       exit 77 unless docker.io and busybox-static are here
#   docker_lab_add ENGINE NODE POOL       registers an engine (POOL: its default address pool)
#   docker_lab_start ENGINE               starts it; true once it answers (60 s)
#   docker_lab_start_or_skip ENGINE       the same, exit 77 with dockerd's reason when it cannot
#   dke ENGINE ARGS...                    the docker CLI against it
#   docker_lab_stop ENGINE                SIGTERM (its containers stop with it)
#   docker_lab_crash ENGINE               SIGKILL of dockerd, containerd, shims and containers
#   docker_lab_replica_image ENGINE       busybox-static rootfs as xdpfwd-e2e-replica:latest
#   docker_lab_ingress_image ENGINE       the xdpfwd-ingress image by docker/build-image
#   docker_lab_down                       the daemon, then every engine, its mounts and dirs
#
# Environment: XDPFWD_SOURCE (the source tree), XDPFWD_INGRESS (the inspector binary).

declare -gA DOCKER_NODE=() DOCKER_POOL=() DOCKERD_PIDS=()
DOCKER_ENGINES=()

skip() {
  echo "SKIP: $*"
  exit 77
}

docker_lab_skip_unless_possible() {
  local setup_log
  if ! setup_log=$("$XDPFWD_SOURCE/scripts/setup-docker" 2>&1); then
    skip "cannot install docker.io: $(tail -1 <<<"$setup_log")"
  fi
  command -v dockerd >/dev/null || skip "no dockerd after scripts/setup-docker"
  [[ -x /bin/busybox ]] || skip "no busybox-static"
}

docker_lab_sock() { echo "$LAB_DIR/$1/docker.sock"; }
dke() {
  local engine=$1
  shift
  docker -H "unix://$LAB_DIR/$engine/docker.sock" "$@"
}

docker_lab_add() {
  local engine=$1
  DOCKER_ENGINES+=("$engine")
  DOCKER_NODE[$engine]=$2
  DOCKER_POOL[$engine]=$3
  mkdir -p "$LAB_DIR/$engine/data" "$LAB_DIR/$engine/exec" "$LAB_DIR/$engine/run"
}

docker_lab_pid() { echo "${DOCKERD_PIDS[$1]:-}"; }
docker_lab_running() { local pid=${DOCKERD_PIDS[$1]:-}; [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; }

docker_lab_start() {
  local engine=$1 d=$LAB_DIR/$1
  nsenter --net="/run/netns/$(lab_ns "${DOCKER_NODE[$engine]}")" -- dockerd --data-root "$d/data" \
    --exec-root "$d/exec" -H "unix://$d/docker.sock" --pidfile "$d/dockerd.pid" --iptables=false \
    --ip6tables=false --bridge=none --default-address-pool "base=${DOCKER_POOL[$engine]},size=24" \
    >>"$LAB_DIR/$engine.log" 2>&1 &
  DOCKERD_PIDS[$engine]=$!
  for _ in $(seq 300); do
    dke "$engine" version >/dev/null 2>&1 && return 0
    docker_lab_running "$engine" || return 1
    sleep 0.2
  done
  return 1
}

docker_lab_start_or_skip() {
  local engine=$1 reason
  docker_lab_start "$engine" && return 0
  reason=$(grep -iE 'level=(error|fatal)|failed' "$LAB_DIR/$engine.log" | tail -1 | cut -c1-200)
  tail -20 "$LAB_DIR/$engine.log" >&2
  skip "dockerd cannot start here: ${reason:-no answer within 60 s}"
}

docker_lab_stop() {
  local pid=${DOCKERD_PIDS[$1]:-}
  [[ -n $pid ]] || return 0
  lab_stop "$pid" 30
}

# What runs under an engine's exec root (its containerd and the shims name it on their command
# lines), then the containers' own processes: a node that dies at once.
# shellcheck disable=SC2206,SC2207 # PIDs, one a word
docker_lab_crash() {
  local engine=$1 d=$LAB_DIR/$1 pids=() pid
  pids+=(${DOCKERD_PIDS[$engine]:-})
  for pid in $(dke "$engine" ps -q 2>/dev/null); do
    pids+=($(dke "$engine" inspect -f '{{.State.Pid}}' "$pid" 2>/dev/null))
  done
  pids+=($(pgrep -f -- "$d/exec" 2>/dev/null))
  for pid in "${pids[@]}"; do
    if ((pid > 1)); then kill -KILL "$pid" 2>/dev/null || true; fi
  done
  [[ -z ${DOCKERD_PIDS[$engine]:-} ]] || wait "${DOCKERD_PIDS[$engine]}" 2>/dev/null || true
  return 0
}

docker_lab_replica_image() {
  local engine=$1 rootfs=$LAB_DIR/$1/rootfs applet
  mkdir -p "$rootfs/bin" "$rootfs/www" "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in sh httpd hostname cat echo sleep; do ln -sf busybox "$rootfs/bin/$applet"; done
  tar -C "$rootfs" -c . | dke "$engine" import - xdpfwd-e2e-replica:latest >/dev/null
}

docker_lab_ingress_image() {
  "$XDPFWD_SOURCE/docker/build-image" --docker-host "unix://$(docker_lab_sock "$1")" "$XDPFWD_INGRESS" 2>/dev/null
}

# One engine: its services, containers and swarm membership first (while it answers), then the
# engine, what is left under its exec root, its mounts and directories.
docker_lab_engine_down() {
  local engine=$1 d=$LAB_DIR/$1 pid mount
  if docker_lab_running "$engine"; then
    dke "$engine" service rm $(dke "$engine" service ls -q 2>/dev/null) >/dev/null 2>&1
    dke "$engine" rm -f $(dke "$engine" ps -aq) >/dev/null 2>&1
    dke "$engine" swarm leave --force >/dev/null 2>&1
    docker_lab_stop "$engine"
  fi
  for pid in $(pgrep -f -- "$d/exec" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  awk -v root="$d" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null
  done
  rm -rf "$d"
}

# The daemon first (it removes its containers and networks through the engine), then the engines
# in reverse order: workers before the manager they report to.
docker_lab_down() {
  set +e
  lab_stop_daemon >/dev/null 2>&1
  local i
  for ((i = ${#DOCKER_ENGINES[@]} - 1; i >= 0; i--)); do docker_lab_engine_down "${DOCKER_ENGINES[i]}"; done
  DOCKER_ENGINES=()
}

# xdpfwd (runtime docker) in NODE with CONFIG, its log appended to $LAB_DIR/daemon.log; waits for
# its "ready:" line (120 s: the first start attaches services, whose tasks are replaced). Sets
# DOCKER_LAB_READY_S; a daemon that dies or never gets ready fails the test here.
docker_lab_start_xdpfwd() {
  local config=$1 node=${2:-node1} log=$LAB_DIR/daemon.log lines begin
  lines=$(wc -l <"$log" 2>/dev/null || echo 0)
  nsenter --net="/run/netns/$(lab_ns "$node")" -- "$XDPFWD" --config "$config" >>"$log" 2>&1 &
  LAB_DAEMON_PID=$!
  begin=$(date +%s)
  until tail -n +"$((lines + 1))" "$log" | grep -q "ready:"; do
    if ! kill -0 "$LAB_DAEMON_PID" 2>/dev/null || (($(date +%s) - begin > 120)); then
      lab_fail "xdpfwd (runtime docker) becomes ready" "$(tail -5 "$log" | tr '\n' '|')"
      cat "$log" >&2
      lab_summary
      exit 1
    fi
    sleep 0.2
  done
  DOCKER_LAB_READY_S=$(($(date +%s) - begin))
}

# xdpfwdctl against $DOCKER_LAB_CONTROL (the config's control_socket).
ctl() { "$XDPFWDCTL" --socket "$DOCKER_LAB_CONTROL" "$@"; }
# replicas SERVICE: the addresses the inspector balances over, sorted, comma-separated.
replicas() {
  ctl status --json 2>/dev/null | jq -r --arg s "$1" \
    '[.ingresses[] | .inspector.services[]? | select(.name == $s) | .replicas[].address] | sort | join(",")'
}
# wait_replicas SERVICE COUNT SECONDS: ms until the inspector has COUNT replicas, or "timeout".
wait_replicas() {
  local service=$1 count=$2 seconds=$3 begin list i
  begin=$(date +%s%N)
  for ((i = 0; i < seconds * 20; i++)); do
    list=$(replicas "$service")
    if [[ -n $list && $(tr ',' '\n' <<<"$list" | wc -l) == "$count" ]]; then
      echo $((($(date +%s%N) - begin) / 1000000))
      return
    fi
    sleep 0.05
  done
  echo timeout
}
