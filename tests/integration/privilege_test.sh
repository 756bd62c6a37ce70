#!/usr/bin/env bash
# Least privilege. The daemon runs with exactly the capabilities of systemd/xdpfwd.service.in
# (CapabilityBoundingSet, through setpriv: bounding set, no inheritable or ambient ones,
# no_new_privs as NoNewPrivileges=yes), and must still do its whole job: ingress "lp" forwards
# HTTP and UDP to its replica; a reload adds domain routing on port 80 to lp in place (a listener
# its unprivileged inspector binds) and a new ingress "lp2"; an inspector killed with SIGKILL
# comes back. Each inspector runs as nobody with CAP_NET_ADMIN and CAP_NET_BIND_SERVICE only
# (also its bounding set), no_new_privs; the control sockets are root's alone; nothing is
# world-writable; a plain stop removes everything.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"
unit="$(dirname "$LAB_SH")/../../systemd/xdpfwd.service.in"

lab_init priv
lab_up
lab_remote_overlay 4150
lab_remote_overlay 4151
lab_replica q1 4150 10.250.0.11/24
lab_replica q1b 4150 10.250.0.12/24
lab_replica q2 4151 10.251.0.11/24
lab_bg q1 q1-udp "$LAB_PEER" udp-echo :: 7 --name q1
for replica in q1 q1b q2; do lab_bg "$replica" "$replica-http" "$LAB_PEER" http-serve :: 80 --name "$replica"; done
for log in q1-udp q1-http q1b-http q2-http; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

# "CAP_BPF CAP_NET_ADMIN ..." -> "-all,+bpf,+net_admin,..." for setpriv.
unit_caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[[ -n $unit_caps ]] || { echo "no CapabilityBoundingSet in $unit" >&2; exit 1; }
bounding="-all"
for cap in $unit_caps; do bounding+=",+${cap#CAP_}"; done
bounding=${bounding,,}
# cap_mask NAME...: their mask, as /proc/PID/status shows capability sets.
cap_mask() {
  local mask=0 name
  for name; do mask=$((mask | 16#$(capsh --explain="${name,,}" | sed -nE '1s/.*CapXXX: 0x([0-9a-f]+)].*/\1/p'))); done
  printf '%016x' "$mask"
}
# What the daemon gets: the unit's capabilities that this lab has (setpriv only removes).
own_bounding=$((16#$(sed -n 's/^CapBnd:\t//p' /proc/self/status)))
mask=0
for cap in $unit_caps; do
  if (((16#$(cap_mask "$cap") & own_bounding) != 0)); then mask=$((mask | 16#$(cap_mask "$cap")))
  else echo "note: this lab has no $cap to give the daemon" >&2; fi
done
expected_daemon=$(printf '%016x' "$mask")
wrapper=$LAB_DIR/xdpfwd-with-unit-caps
cat >"$wrapper" <<EOF
#!/bin/sh
exec setpriv --bounding-set $bounding --inh-caps -all --ambient-caps -all --no-new-privs -- "$XDPFWD" "\$@"
EOF
chmod 0755 "$wrapper"

config=$LAB_DIR/services.json
lp_v1='{ "name": "lp", "service_ips": [ "198.18.0.70" ],
      "overlay": { "vni": 4150, "address": "10.250.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "lp-a", "replicas": [ { "address": "10.250.0.11" } ] } ] }'
lp_v2='{ "name": "lp", "service_ips": [ "198.18.0.70" ],
      "overlay": { "vni": 4150, "address": "10.250.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "domain_routing": { "http_ports": [ 80 ], "unknown_domain": "lp-a" },
      "services": [ { "name": "lp-a", "domains": [ "a.lp.test" ], "replicas": [ { "address": "10.250.0.11" } ] },
                    { "name": "lp-b", "domains": [ "b.lp.test" ], "replicas": [ { "address": "10.250.0.12" } ] } ] }'
lp2='{ "name": "lp2", "service_ips": [ "198.18.0.72" ],
      "overlay": { "vni": 4151, "address": "10.251.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "services": [ { "name": "lp2-a", "replicas": [ { "address": "10.251.0.11" } ] } ] }'
write_config() { # INGRESS...
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
write_config "$lp_v1"
XDPFWD=$wrapper lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
field() { sed -nE "s/^$2:[[:space:]]*//p" "/proc/$1/status" | tr '\t' ' '; }

lab_expect "the daemon's bounding set is the unit's" "$(field "$LAB_DAEMON_PID" CapBnd)" "$expected_daemon"
lab_expect "... and so is its effective set" "$(field "$LAB_DAEMON_PID" CapEff)" "$expected_daemon"
lab_expect "... with no_new_privs" "$(field "$LAB_DAEMON_PID" NoNewPrivs)" 1

http() { lab_exec client curl -sS --max-time 5 "$@" 2>&1 || true; }
lab_expect_match "HTTP to lp reaches its replica" "$(http http://198.18.0.70/)" '^q1 client=10\.250\.0\.1:'
lab_expect_match "UDP to lp reaches its replica, all answered" \
  "$(lab_exec client "$LAB_PEER" udp-send 198.18.0.70 7 --count 20 --wait-ms 3000)" '^sent 20 received 20$'
lab_expect_match "xdpfwdctl status answers" "$(ctl status 2>&1)" '^lp +lp-a +10\.250\.0\.11 '

# The inspector: nobody, two capabilities, nothing to gain by exec.
inspector_caps=$(cap_mask cap_net_admin cap_net_bind_service)
check_inspector() { # INGRESS
  local pid
  pid=$(cat "$LAB_DIR/ingress-$1.pid")
  lab_expect "$1's inspector (pid $pid) runs as nobody" "$(field "$pid" Uid)" "65534 65534 65534 65534"
  lab_expect "... in nogroup" "$(field "$pid" Gid)" "65534 65534 65534 65534"
  lab_expect "... without supplementary groups" "$(field "$pid" Groups)" ""
  lab_expect "... with cap_net_admin,cap_net_bind_service effective" "$(field "$pid" CapEff)" "$inspector_caps"
  lab_expect "... and permitted" "$(field "$pid" CapPrm)" "$inspector_caps"
  lab_expect "... and nothing more in its bounding set" "$(field "$pid" CapBnd)" "$inspector_caps"
  lab_expect "... nothing inheritable or ambient" "$(field "$pid" CapInh) $(field "$pid" CapAmb)" \
    "0000000000000000 0000000000000000"
  lab_expect "... with no_new_privs" "$(field "$pid" NoNewPrivs)" 1
}
check_inspector lp
lab_expect_match "the inspector logs what it kept" "$(cat "$LAB_DIR/daemon.log")" \
  'ingress lp: running as uid 65534 gid 65534 with cap_net_admin,cap_net_bind_service only'

# A reload: the running, unprivileged inspector of lp starts the domain proxy on port 80 (in
# place: its service IPs and overlay stay); the new ingress lp2 gets an inspector of its own.
lp_pid=$(cat "$LAB_DIR/ingress-lp.pid")
write_config "$lp_v2" "$lp2"
out=$(ctl reload 2>&1) && lab_pass "xdpfwdctl reload succeeds" || lab_fail "xdpfwdctl reload succeeds" "$out"
listeners() { ctl status --json | jq '.ingresses[] | select(.name == "lp") | .inspector.proxy.listeners // [] | length'; }
waited=0
until [[ $(listeners) == 1 ]] || ((waited++ > 100)); do sleep 0.1; done
lab_expect "lp's inspector listens on port 80 now" "$(listeners)" 1
# The file is watched too: whichever reload applied it, none failed.
lab_expect_no_match "no reload failed" "$(cat "$LAB_DIR/daemon.log")" 'reload \(.*\)( rejected|: applying .* failed)'
lab_expect "... the same inspector, reconfigured" "$(cat "$LAB_DIR/ingress-lp.pid")" "$lp_pid"
lab_expect_match "HTTP Host b.lp.test: through the proxy to lp-b" "$(http -H 'Host: b.lp.test' http://198.18.0.70/)" \
  '^q1b client=10\.250\.0\.1:'
lab_expect_match "HTTP Host a.lp.test: through the proxy to lp-a" "$(http -H 'Host: a.lp.test' http://198.18.0.70/)" \
  '^q1 client=10\.250\.0\.1:'
lab_expect_match "UDP still reaches lp-a (unknown_domain)" \
  "$(lab_exec client "$LAB_PEER" udp-send 198.18.0.70 7 --count 20 --wait-ms 3000)" '^sent 20 received 20$'
lab_expect_match "HTTP to the new ingress lp2 reaches its replica" "$(http http://198.18.0.72/)" '^q2 client=10\.251\.0\.1:'
check_inspector lp2

# A killed inspector: the daemon starts a new one, which drops its privileges as well.
kill -KILL "$lp_pid"
waited=0
until [[ $(cat "$LAB_DIR/ingress-lp.pid") != "$lp_pid" ]] &&
  grep -q "ingress lp: inspector configured (pid $(cat "$LAB_DIR/ingress-lp.pid"))" "$LAB_DIR/daemon.log"; do
  ((waited++ < 100)) || break
  sleep 0.1
done
lab_expect_match "a killed inspector is restarted" "$(cat "$LAB_DIR/daemon.log")" "ingress lp: restarting the inspector"
lab_expect_match "... and traffic resumes" "$(http -H 'Host: b.lp.test' http://198.18.0.70/)" '^q1b client='
check_inspector lp

# Files: the control sockets are root's alone; nothing is world-writable.
for socket in control.sock ingress-lp.sock ingress-lp2.sock; do
  lab_expect "$socket is mode 600, owned by root" "$(stat -c '%a %U' "$LAB_DIR/$socket")" "600 root"
done
writable=$(find "$LAB_DIR" "$LAB_PIN_DIR" /run/netns/xdpfwd-lp /run/netns/xdpfwd-lp2 -perm -0002 ! -type l 2>&1)
lab_expect "nothing in the run and pin directories is world-writable" "$writable" ""

inspectors=$(cat "$LAB_DIR"/ingress-*.pid)
status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
alive=""
for pid in $inspectors; do kill -0 "$pid" 2>/dev/null && alive+=" $pid"; done
lab_expect "no inspector survives the daemon" "$alive" ""
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-(lp|lp2)( |$)"
lab_expect "the sockets, pid files, state file and pins are gone" \
  "$(cd "$LAB_DIR" && ls -d control.sock ingress-* state.json "$LAB_PIN_DIR" 2>/dev/null || true)" ""

lab_summary
