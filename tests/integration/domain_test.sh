#!/usr/bin/env bash
# Domain routing end to end. Ingress "dom" fronts two services on one service IP (198.18.0.30,
# fd00:18::30): dom-a ("a.example.test", "*.a.example.test"; replicas ra1, ra2) and dom-b
# ("b.example.test"; replica rb1), each replica serving TLS (443), HTTP (80) and DNS (53) and
# saying who it is. TLS SNI and HTTP Host pick the service through the ingress's terminating
# proxy, DNS query names in the packet path; unknown names are refused (TLS alert, 421, REFUSED),
# malformed DNS and ports without a domain are dropped and counted; half-close travels, a silent
# client is timed out. Ingress "domp" (198.18.0.31) announces clients with PROXY protocol v2,
# falls back to its service domp-b for unknown names, and holds two connections at most.
set -euo pipefail
source "${LAB_SH:?}"
: "${XDPFWD:?}" "${XDPFWDCTL:?}" "${LAB_PEER:?}"

lab_init dom
lab_up
lab_remote_overlay 4130
lab_remote_overlay 4131
servers=()
replica() { # NAME VNI ADDR ADDR6 DNS-ANSWER [--proxy-v2]
  local name=$1 vni=$2 address=$3 address6=$4 answer=$5 proxy=${6:-}
  lab_replica "$name" "$vni" "$address/24" "$address6/64"
  lab_bg "$name" "$name-tls" "$LAB_PEER" tls-serve :: 443 --name "$name" $proxy
  lab_bg "$name" "$name-http" "$LAB_PEER" http-serve :: 80 --name "$name" $proxy
  lab_bg "$name" "$name-dns" "$LAB_PEER" dns-serve :: 53 --name "$name" --answer "$answer"
  servers+=("$name-tls" "$name-http" "$name-dns")
}
replica ra1 4130 10.230.0.11 fd00:230::11 10.99.0.11
replica ra2 4130 10.230.0.12 fd00:230::12 10.99.0.12
replica rb1 4130 10.230.0.21 fd00:230::21 10.99.0.21
replica pa 4131 10.231.0.11 fd00:231::11 10.99.1.11 --proxy-v2
replica pb 4131 10.231.0.21 fd00:231::21 10.99.1.21 --proxy-v2
for log in "${servers[@]}"; do lab_wait_for "$LAB_DIR/$log.log" listening 5; done

config=$LAB_DIR/services.json
cat >"$config" <<EOF
{
  "interfaces": [ { "name": "eth0" } ],
  "pin_dir": "$LAB_PIN_DIR",
  "control_socket": "$LAB_DIR/control.sock",
  "underlay": { "local": "198.18.2.1" },
  "ingresses": [
    { "name": "dom", "service_ips": [ "198.18.0.30", "fd00:18::30" ],
      "overlay": { "vni": 4130, "address": "10.230.0.1/24", "address6": "fd00:230::1/64", "remote_vteps": [ "198.18.2.2" ] },
      "domain_routing": { "tls_ports": [ 443 ], "http_ports": [ 80 ], "dns_ports": [ 53 ], "unknown_domain": "reject",
                          "first_bytes_timeout_ms": 1000 },
      "services": [
        { "name": "dom-a", "domains": [ "a.example.test", "*.a.example.test" ], "lb": "round_robin",
          "replicas": [ { "address": "10.230.0.11" }, { "address": "10.230.0.12" },
                        { "address": "fd00:230::11" }, { "address": "fd00:230::12" } ] },
        { "name": "dom-b", "domains": [ "b.example.test" ],
          "replicas": [ { "address": "10.230.0.21" }, { "address": "fd00:230::21" } ] } ] },
    { "name": "domp", "service_ips": [ "198.18.0.31" ],
      "overlay": { "vni": 4131, "address": "10.231.0.1/24", "remote_vteps": [ "198.18.2.2" ] },
      "domain_routing": { "tls_ports": [ 443 ], "http_ports": [ 80 ], "unknown_domain": "domp-b", "proxy_protocol": true,
                          "max_connections": 2 },
      "services": [
        { "name": "domp-a", "domains": [ "a.example.test" ], "replicas": [ { "address": "10.231.0.11" } ] },
        { "name": "domp-b", "domains": [ "b.example.test" ], "replicas": [ { "address": "10.231.0.21" } ] } ] }
  ]
}
EOF
lab_start_daemon "$config"
ctl() { "$XDPFWDCTL" --socket "$LAB_DIR/control.sock" "$@"; }
inspector() { ctl status --json | jq -r --arg ingress "$1" ".ingresses[] | select(.name == \$ingress) | .inspector | $2"; }
# The proxy listens once the inspector is configured.
waited=0
until [[ $(inspector dom '.proxy.listeners | length' 2>/dev/null) == 4 && $(inspector domp '.proxy.listeners | length' 2>/dev/null) == 2 ]]; do
  ((waited++ < 100)) || break
  sleep 0.1
done
lab_expect "dom's proxy listens on 443 and 80 of both service IPs" "$(inspector dom '.proxy.listeners | length')" 4
lab_expect "dom's XDP program passes 80 and 443 to the kernel" "$(inspector dom '.terminated_tcp_ports | join(",")')" "80,443"

https() { # NAME ADDRESS [curl options]: the body, or curl's error
  local name=$1 address=$2
  shift 2
  lab_exec client curl -sS -k --max-time 5 --resolve "$name:443:$address" "$@" "https://$name/" 2>&1 || true
}

# TLS: the SNI picks the service.
out=$(https a.example.test 198.18.0.30)
lab_expect_match "TLS a.example.test lands on dom-a (NAT'ed to the overlay)" "$out" '^ra[12] client=10\.230\.0\.1:6[0-9]{4} sni=a\.example\.test$'
out=$(https b.example.test 198.18.0.30)
lab_expect_match "TLS b.example.test lands on dom-b" "$out" '^rb1 client=10\.230\.0\.1:[0-9]+ sni=b\.example\.test$'
out=$(https x.y.a.example.test 198.18.0.30)
lab_expect_match "TLS x.y.a.example.test (wildcard *.a.example.test) lands on dom-a" "$out" '^ra[12] .* sni=x\.y\.a\.example\.test$'
out=$(https c.example.test 198.18.0.30)
lab_expect_match "TLS c.example.test (no service) is refused with an alert" "$out" 'unrecognized name'
out=$(https b.example.test '[fd00:18::30]')
lab_expect_match "TLS over IPv6 lands on dom-b's IPv6 replica" "$out" '^rb1 client=\[fd00:230::1\]:[0-9]+ sni=b\.example\.test$'
answers=""
for _ in $(seq 8); do answers+="$(https a.example.test 198.18.0.30)"$'\n'; done
lab_expect "8 TLS connections to dom-a all answered" "$(grep -c '^ra[12] ' <<<"$answers")" 8
lab_expect_match "... by ra1 (round robin)" "$answers" '^ra1 '
lab_expect_match "... and by ra2" "$answers" '^ra2 '

# HTTP: the Host header picks the service (port dropped, case ignored).
http() { lab_exec client curl -sS --max-time 5 "$@" 2>&1 || true; }
out=$(http --resolve a.example.test:80:198.18.0.30 http://a.example.test/)
lab_expect_match "HTTP Host a.example.test lands on dom-a" "$out" '^ra[12] client=10\.230\.0\.1:'
out=$(http -H "Host: B.Example.TEST:80" http://198.18.0.30/)
lab_expect_match "HTTP Host B.Example.TEST:80 lands on dom-b" "$out" '^rb1 client=10\.230\.0\.1:'
out=$(http -H "Host: deep.x.a.example.test" "http://[fd00:18::30]/")
lab_expect_match "HTTP over IPv6, wildcard Host, lands on dom-a" "$out" '^ra[12] client=\[fd00:230::1\]:'
out=$(http -o /dev/null -w '%{http_code}' -H "Host: c.example.test" http://198.18.0.30/)
lab_expect "HTTP Host c.example.test (no service) gets 421" "$out" 421
out=$(lab_exec client "$LAB_PEER" tcp-send 198.18.0.30 80 --data 'GET / HTTP/1.1\r\nHost: a.example.test\r\nHost: b.example.test\r\n\r\n')
lab_expect_match "HTTP with two Host headers gets 400" "$out" '^HTTP/1.1 400 Bad Request'
lab_expect_match "... and the end of the connection" "$out" '^eof after'
out=$(lab_exec client "$LAB_PEER" tcp-send 198.18.0.30 80 --data 'GET / HTTP/1.0\r\nHost: b.example.test\r\n\r\n' --half-close --wait-ms 3000)
lab_expect_match "half-close: a client that stops sending still gets its answer" "$out" '^rb1 client='
lab_expect_match "... and then the replica's end" "$out" '^eof after'
out=$(lab_exec client "$LAB_PEER" tcp-send 198.18.0.30 443 --wait-ms 3000)
lab_expect_match "a client silent for first_bytes_timeout_ms (1 s) is closed" "$out" '^eof after (9[0-9]{2}|1[0-9]{3}) ms'

# DNS: the query name picks the service, in the packet path.
dig_short() { lab_exec client dig +short +time=2 +tries=1 "$@" 2>&1 || true; }
lab_expect_match "dig x.a.example.test reaches dom-a's resolver" "$(dig_short @198.18.0.30 x.a.example.test)" '^10\.99\.0\.1[12]$'
lab_expect "dig b.example.test reaches dom-b's resolver" "$(dig_short @198.18.0.30 b.example.test)" 10.99.0.21
lab_expect "dig TXT b.example.test over IPv6 too" "$(dig_short @fd00:18::30 TXT b.example.test)" '"rb1"'
out=$(lab_exec client dig +time=2 +tries=1 @198.18.0.30 c.example.test 2>&1 || true)
lab_expect_match "dig c.example.test (no service) is REFUSED by the ingress" "$out" 'status: REFUSED'
out=$(lab_exec client dig +time=2 +tries=1 @fd00:18::30 c.example.test 2>&1 || true)
lab_expect_match "... over IPv6 too" "$out" 'status: REFUSED'
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.30 53 --count 5 --wait-ms 500)
lab_expect_match "datagrams to the DNS port that are no query get no answer" "$out" '^sent 5 received 0$'
lab_expect "... and are counted as bad_dns" "$(inspector dom '.drops.bad_dns')" 5
out=$(lab_exec client "$LAB_PEER" udp-send 198.18.0.30 7 --count 3 --wait-ms 500)
lab_expect "UDP to a port without a domain (unknown_domain reject) is counted as no_domain_port" "$(inspector dom '.drops.no_domain_port')" 3
lab_expect "the REFUSED answers are counted" "$(inspector dom '.dns_refused')" 2
lab_expect "queries routed by name are counted per service" "$(inspector dom '[.services[].dns_routed] | join(",")')" "1,2"

# What the proxy counted.
lab_expect "proxy: unknown TLS and HTTP names rejected" "$(inspector dom '.proxy.rejected.unknown_domain')" 2
lab_expect "proxy: the two-Host request counted as malformed" "$(inspector dom '.proxy.drops.malformed')" 1
lab_expect "proxy: the silent client counted as first_bytes_timeout" "$(inspector dom '.proxy.drops.first_bytes_timeout')" 1
lab_expect "proxy: connections per service (a, b)" "$(inspector dom '[.proxy.services[].connections] | join(",")')" "12,4"
lab_expect "proxy: no connection left open" "$(inspector dom '.proxy.active')" 0

# PROXY protocol v2 and unknown_domain as a service.
out=$(https a.example.test 198.18.0.31)
lab_expect_match "PROXY v2: the replica sees the client's address (TLS)" "$out" '^pa client=198\.18\.1\.2:[0-9]+ proxy=v2 sni=a\.example\.test$'
out=$(http -H "Host: a.example.test" http://198.18.0.31/)
lab_expect_match "PROXY v2: the replica sees the client's address (HTTP)" "$out" '^pa client=198\.18\.1\.2:[0-9]+ proxy=v2$'
out=$(https c.example.test 198.18.0.31)
lab_expect_match "unknown_domain domp-b: an unknown name falls back to domp-b" "$out" '^pb client=198\.18\.1\.2:[0-9]+ proxy=v2 sni=c\.example\.test$'
out=$(lab_exec client curl -sS -k --max-time 5 https://198.18.0.31/ 2>&1 || true)
lab_expect_match "... and so does a ClientHello without SNI" "$out" '^pb client=198\.18\.1\.2:[0-9]+ proxy=v2 sni=-$'

# max_connections 2: a third connection while two wait for their first bytes is reset.
lab_bg client hold1 "$LAB_PEER" tcp-send 198.18.0.31 80 --wait-ms 3000
lab_bg client hold2 "$LAB_PEER" tcp-send 198.18.0.31 80 --wait-ms 3000
waited=0
until [[ $(inspector domp '.proxy.active') == 2 ]] || ((waited++ > 50)); do sleep 0.1; done
out=$(lab_exec client "$LAB_PEER" tcp-send 198.18.0.31 80 --wait-ms 2000)
lab_expect_match "max_connections 2: the third connection is reset" "$out" '^reset after'
lab_expect "... and counted as max_connections" "$(inspector domp '.proxy.drops.max_connections')" 1

# Ingresses with one service, and the non-domain traffic of others, keep the packet path.
lab_expect_no_match "no proxy errors in the log" "$(cat "$LAB_DIR/daemon.log")" 'proxy: listen on .*:'

status=0
lab_stop_daemon || status=$?
lab_expect "xdpfwd exits 0 on SIGTERM" "$status" 0
lab_expect_no_match "no ingress netns remains" "$(ip netns list)" "^xdpfwd-(dom|domp)( |$)"

lab_summary
