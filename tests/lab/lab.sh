# The network-namespace lab of DESIGN.md, sourced by the integration tests and scripts/demo.
#
#   client netns ──veth── node1 netns (plays the host: NIC = veth "eth0", runs xdpfwd)
#                           └── ingress netns xdpfwd-<name> (made by xdpfwd)
#                         node1 ──veth underlay── node2 netns (remote node)
#
#   client  eth0 198.18.1.2/24 fd00:1::2/64, default route via node1
#   node1   eth0 198.18.1.1/24 fd00:1::1/64, u0 198.18.2.1/24 fd00:2::1/64
#   node2   u0   198.18.2.2/24 fd00:2::2/64
#
# Everything lives in namespaces named after this run ($LAB-client, ...) plus the ingress
# namespaces the daemon makes; lab_down removes all of it, and lab_init arranges for lab_down to
# run on every exit, failures included. Processes are started through lab_bg / lab_start_daemon
# and ended by PID. Needs root, iproute2 and util-linux (nsenter).
#
# Environment: XDPFWD (the daemon binary), LAB_PEER (tests/lab/lab_peer) for the helpers below.

LAB=""
LAB_DIR=""
LAB_PIDS=()
LAB_DAEMON_PID=""
LAB_EXTRA_NETNS=() # ingress namespaces the daemon makes: removed too if it could not
LAB_PIN_DIR=""

lab_log() { printf '[lab] %s\n' "$*" >&2; }

# lab_curls N URL: N HTTP requests from the client, a connection (so a flow) each; the answers,
# or curl's errors, a line each.
lab_curls() {
  local _
  for _ in $(seq "$1"); do printf '%s\n' "$(lab_exec client curl -sS --max-time 5 "$2" 2>&1 || true)"; done
}

# lab_udp_flows N IP PORT: N UDP flows (a sender socket each) of 20 datagrams from the client;
# lab_peer's summary of each ("sent 20 received 20", "from r1: 20").
lab_udp_flows() {
  local _
  for _ in $(seq "$1"); do printf '%s\n' "$(lab_exec client "$LAB_PEER" udp-send "$2" "$3" --count 20 --wait-ms 3000)"; done
}

# lab_init NAME: names this run's lab and registers the clean-up.
lab_init() {
  LAB="xl$$${1:+-$1}"
  LAB="${LAB:0:12}" # netns names are free-form, but veth peers carry it in logs: keep it short
  LAB_DIR=$(mktemp -d "/tmp/xdpfwd-lab.XXXXXX")
  LAB_PIN_DIR="/sys/fs/bpf/xdpfwd-$LAB"
  trap lab_down EXIT
  # libxdp keeps its lock and dispatcher pins in $LIBXDP_BPFFS/xdp (default /sys/fs/bpf/xdp):
  # a directory of this run's own, so that nothing stays behind in /sys/fs/bpf.
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
  export LIBXDP_BPFFS="/sys/fs/bpf/xdpfwd-$LAB-libxdp"
  mkdir -p "$LIBXDP_BPFFS"
  trap 'exit 130' INT TERM
}

lab_ns() { echo "$LAB-$1"; }

# lab_exec NODE CMD...: runs CMD in the node's network namespace only (the mount namespace stays,
# so /sys/fs/bpf pins remain visible, unlike `ip netns exec`).
lab_exec() {
  local node=$1
  shift
  nsenter --net="/run/netns/$(lab_ns "$node")" -- "$@"
}

# lab_exec_netns NETNS CMD...: the same for a namespace given by its full name.
lab_exec_netns() {
  local netns=$1
  shift
  nsenter --net="/run/netns/$netns" -- "$@"
}

lab_up() {
  local node
  for node in client node1 node2; do ip netns add "$(lab_ns $node)"; done
  local client node1 node2
  client=$(lab_ns client) node1=$(lab_ns node1) node2=$(lab_ns node2)

  ip -n "$node1" link add eth0 type veth peer name eth0 netns "$client"
  ip -n "$node1" link add u0 type veth peer name u0 netns "$node2"
  for node in "$client" "$node1" "$node2"; do ip -n "$node" link set lo up; done

  ip -n "$client" addr add 198.18.1.2/24 dev eth0
  ip -n "$client" addr add fd00:1::2/64 dev eth0 nodad
  ip -n "$client" link set eth0 up
  ip -n "$client" route add default via 198.18.1.1
  ip -n "$client" -6 route add default via fd00:1::1
  # A real wire delivers complete checksums; a veth leaves them partial, which an XDP redirect
  # loses. Without TX offload the client behaves like a host behind a wire.
  nsenter --net="/run/netns/$client" ethtool -K eth0 tx off >/dev/null

  ip -n "$node1" addr add 198.18.1.1/24 dev eth0
  ip -n "$node1" addr add fd00:1::1/64 dev eth0 nodad
  ip -n "$node1" addr add 198.18.2.1/24 dev u0
  ip -n "$node1" addr add fd00:2::1/64 dev u0 nodad
  ip -n "$node1" link set eth0 up
  ip -n "$node1" link set u0 up

  ip -n "$node2" addr add 198.18.2.2/24 dev u0
  ip -n "$node2" addr add fd00:2::2/64 dev u0 nodad
  ip -n "$node2" link set u0 up
  lab_log "up: $client, $node1, $node2"
}

# lab_remote_overlay VNI: on node2, the far end of an ingress's overlay: a VXLAN device with
# that VNI towards node1's underlay address, in a bridge that lab_replica plugs replicas into.
lab_remote_overlay() {
  local vni=$1 node2
  node2=$(lab_ns node2)
  ip -n "$node2" link add "vx$vni" type vxlan id "$vni" local 198.18.2.2 dstport 4789 dev u0
  nsenter --net="/run/netns/$node2" bridge fdb append 00:00:00:00:00:00 dev "vx$vni" dst 198.18.2.1
  ip -n "$node2" link add "br$vni" type bridge
  ip -n "$node2" link set "vx$vni" master "br$vni" up
  ip -n "$node2" link set "br$vni" up
}

# lab_replica NAME VNI ADDR/LEN [ADDR6/LEN]: a replica netns $LAB-NAME on node2's bridge of that
# VNI. Its routes towards the lab's client ranges go via the ingress's overlay address (.1 / ::1
# of its subnet), which is what client_ip "preserve" needs; with "nat" they are not used.
lab_replica() {
  local name=$1 vni=$2 address=$3 address6=${4:-}
  local netns node2
  netns=$(lab_ns "$name") node2=$(lab_ns node2)
  ip netns add "$netns"
  ip -n "$node2" link add "r-$name" type veth peer name eth0 netns "$netns"
  ip -n "$node2" link set "r-$name" master "br$vni" up
  ip -n "$netns" link set lo up
  # The overlay's MTU, as Docker gives its overlay endpoints: node2's VXLAN takes 50 bytes.
  ip -n "$netns" link set eth0 mtu 1450
  ip -n "$netns" addr add "$address" dev eth0
  ip -n "$netns" link set eth0 up
  ip -n "$netns" route add 198.18.0.0/15 via "${address%.*}.1"
  if [[ -n $address6 ]]; then
    ip -n "$netns" addr add "$address6" dev eth0 nodad
    ip -n "$netns" -6 route add fd00:1::/64 via "${address6%::*}::1"
  fi
  # Like the client: complete checksums on the wire (see lab_up).
  nsenter --net="/run/netns/$netns" ethtool -K eth0 tx off >/dev/null
}

# lab_bg NODE NAME CMD...: runs CMD in the background in NODE's namespace (a full netns name
# when NODE contains a '-'); output to $LAB_DIR/NAME.log. Sets LAB_LAST_PID.
lab_bg() {
  local node=$1 name=$2
  shift 2
  local netns=$node
  [[ $node == *-* ]] || netns=$(lab_ns "$node")
  nsenter --net="/run/netns/$netns" -- "$@" >"$LAB_DIR/$name.log" 2>&1 &
  LAB_LAST_PID=$!
  LAB_PIDS+=("$LAB_LAST_PID")
}

# lab_wait_for FILE PATTERN SECONDS: waits until FILE has a line matching PATTERN.
lab_wait_for() {
  local file=$1 pattern=$2 seconds=${3:-10} waited=0
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    ((waited++ < seconds * 10)) || { lab_log "timed out waiting for '$pattern' in $file"; return 1; }
    sleep 0.1
  done
}

# lab_stop PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10); returns its status.
lab_stop() {
  local pid=$1 seconds=${2:-10} waited=0
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited++ >= seconds * 10)); then
      lab_log "PID $pid ignored SIGTERM for ${seconds}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.1
  done
  wait "$pid" 2>/dev/null
}

# lab_start_daemon CONFIG: runs xdpfwd in node1 and waits until it is ready (or gives up).
lab_start_daemon() {
  local config=$1
  local ingress
  for ingress in $(jq -r '.ingresses[].name' "$config"); do LAB_EXTRA_NETNS+=("xdpfwd-$ingress"); done
  # nsenter execs the daemon, so $! is the daemon's PID (a shell function here would fork).
  # Appended: inspectors that outlive a daemon (restarts) still write to this file.
  lab_ready_count() { if [[ -f $LAB_DIR/daemon.log ]]; then grep -c "ready:" "$LAB_DIR/daemon.log" || true; else echo 0; fi; }
  local ready_before
  ready_before=$(lab_ready_count)
  nsenter --net="/run/netns/$(lab_ns node1)" -- "$XDPFWD" --config "$config" >>"$LAB_DIR/daemon.log" 2>&1 &
  LAB_DAEMON_PID=$!
  local waited=0
  until (($(lab_ready_count) > ready_before)); do
    if ! kill -0 "$LAB_DAEMON_PID" 2>/dev/null || ((waited++ > 300)); then
      lab_log "xdpfwd did not become ready; its log:"
      cat "$LAB_DIR/daemon.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# lab_stop_daemon: SIGTERM and wait; returns the daemon's exit status.
lab_stop_daemon() {
  [[ -n $LAB_DAEMON_PID ]] || return 0
  local status=0
  lab_stop "$LAB_DAEMON_PID" 20 || status=$?
  LAB_DAEMON_PID=""
  return "$status"
}

lab_down() {
  local status=$?
  set +e
  local pid
  for pid in "${LAB_PIDS[@]}"; do lab_stop "$pid" 5 >/dev/null 2>&1; done
  LAB_PIDS=()
  lab_stop_daemon
  # Inspectors outlive a daemon that died (or stopped for a restart): their pid files say which.
  local pidfile
  for pidfile in "$LAB_DIR"/ingress-*.pid; do
    [[ -e $pidfile ]] || continue
    pid=$(cat "$pidfile")
    grep -qs xdpfwd-ingress "/proc/$pid/cmdline" && lab_stop "$pid" 5 >/dev/null 2>&1
  done
  local netns
  # The lab's own namespaces all start with $LAB-: client, nodes and replicas.
  for netns in "${LAB_EXTRA_NETNS[@]}" /run/netns/"$LAB"-*; do
    netns=${netns#/run/netns/}
    [[ -e /run/netns/$netns ]] && ip netns delete "$netns"
  done
  [[ -n $LAB_PIN_DIR && -d $LAB_PIN_DIR ]] && rm -rf "$LAB_PIN_DIR"
  [[ -n ${LIBXDP_BPFFS:-} && -d $LIBXDP_BPFFS ]] && rm -rf "$LIBXDP_BPFFS"
  [[ -n $LAB_DIR ]] && rm -rf "$LAB_DIR"
  LAB_DIR=""
  return "$status"
}

# Checks: each prints one line; lab_summary prints "N passed, N failed" and fails if any did.
LAB_PASSED=0
LAB_FAILED=0

lab_pass() { LAB_PASSED=$((LAB_PASSED + 1)); printf 'PASS %s\n' "$1"; }
lab_fail() { LAB_FAILED=$((LAB_FAILED + 1)); printf 'FAIL %s\n' "$1"; [[ -z ${2:-} ]] || printf '     %s\n' "$2"; }

# lab_expect DESCRIPTION ACTUAL EXPECTED: equal strings.
lab_expect() {
  if [[ $2 == "$3" ]]; then lab_pass "$1"; else lab_fail "$1" "got '$2', expected '$3'"; fi
}

# lab_expect_match DESCRIPTION TEXT REGEX: TEXT has a line matching REGEX (grep -E).
lab_expect_match() {
  if grep -qE -- "$3" <<<"$2"; then lab_pass "$1"; else lab_fail "$1" "no line matches /$3/ in: $(tr '\n' '|' <<<"$2")"; fi
}

# lab_expect_no_match DESCRIPTION TEXT REGEX
lab_expect_no_match() {
  if grep -qE -- "$3" <<<"$2"; then lab_fail "$1" "unexpected /$3/ in: $(tr '\n' '|' <<<"$2")"; else lab_pass "$1"; fi
}

lab_summary() {
  echo "$LAB_PASSED passed, $LAB_FAILED failed"
  ((LAB_FAILED == 0))
}
