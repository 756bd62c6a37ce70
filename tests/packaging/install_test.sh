#!/usr/bin/env bash
# `cmake --install` into a staging root: the daemon, the unit and the example config land where
# the operator's contract says; the unit passes `systemd-analyze verify` with nothing to say; the
# installed binary accepts the installed config.
# usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage cmake --install "$build" >/dev/null
for file in usr/sbin/xdpfwd usr/sbin/xdpfwdctl usr/sbin/xdpfwd-ingress usr/lib/systemd/system/xdpfwd.service etc/xdpfwd/services.json; do
  [[ -e $stage/$file ]] || { echo "FAIL: $file was not installed"; exit 1; }
done

# verify checks that ExecStart exists, so point the unit at the staged binary for the check.
unit=$stage/xdpfwd.service
sed -e "s|/usr/sbin/xdpfwd|$stage/usr/sbin/xdpfwd|g" -e "s|/etc/xdpfwd/|$stage/etc/xdpfwd/|g" \
  "$stage/usr/lib/systemd/system/xdpfwd.service" > "$unit"
output=$(systemd-analyze verify "$unit" 2>&1) || { echo "FAIL: systemd-analyze verify: $output"; exit 1; }
[[ -z $output ]] || { echo "FAIL: systemd-analyze verify has remarks: $output"; exit 1; }

"$stage/usr/sbin/xdpfwd" --check --config "$stage/etc/xdpfwd/services.json"
echo "installed: $(cd "$stage" && find . -type f | sort | tr '\n' ' ')"
