#!/usr/bin/env bash
# The demo: a three-director cluster on loopback, driven by lvsctl, with a failover.
# Usage: deploy/demo.sh BIN_DIR   (make demo passes target/debug)
set -euo pipefail

BIN=$(cd "${1:-target/debug}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
DEMO=/tmp/lvs-demo
export LVSCTL_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
export RUST_LOG=${RUST_LOG:-info,openraft=warn}

for b in director lvsctl; do
    [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b is missing (run: cargo build --bins)" >&2; exit 1; }
done

declare -A PIDS=()
cleanup() {
    for id in "${!PIDS[@]}"; do kill -9 "${PIDS[$id]}" 2>/dev/null || true; done
}
trap cleanup EXIT

# Stop directors left over from an earlier demo run, then start from empty stores.
if [ -d "$DEMO" ]; then
    for f in "$DEMO"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
fi
rm -rf "$DEMO"
mkdir -p "$DEMO"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
lvsctl() { "$BIN/lvsctl" "$@"; }

start() {
    local id=$1; shift
    "$BIN/director" --config "$HERE/examples/director-$id.toml" "$@" >>"$DEMO/director-$id.log" 2>&1 &
    PIDS[$id]=$!
    echo "${PIDS[$id]}" >"$DEMO/director-$id.pid"
    echo "started director $id (pid ${PIDS[$id]}, log $DEMO/director-$id.log)"
}

leader() {
    lvsctl --output json cluster status 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("leader_id") or "")' 2>/dev/null || true
}

wait_leader() {
    local not=${1:-} l=""
    for _ in $(seq 1 100); do
        l=$(leader)
        if [ -n "$l" ] && [ "$l" != "$not" ]; then echo "$l"; return 0; fi
        sleep 0.1
    done
    echo "demo: no leader elected" >&2
    exit 1
}

step "Start three directors (director 1 bootstraps the cluster)"
start 1 --bootstrap
start 2
start 3
L=$(wait_leader)
echo "leader: director $L"
run lvsctl cluster status

step "Configure virtual services the ipvsadm way"
run lvsctl service add -t 192.0.2.10:80 -s wlc -p 300
run lvsctl real add -t 192.0.2.10:80 -r 10.0.0.11 -w 3
run lvsctl real add -t 192.0.2.10:80 -r 10.0.0.12 -w 1
run lvsctl service add -u 192.0.2.10:53 -s rr
run lvsctl real add -u 192.0.2.10:53 -r 10.0.0.11:5353 -m
run lvsctl list

step "Bad input is refused and changes nothing"
run lvsctl real add -t 192.0.2.10:80 -r 10.0.0.13 -w 70000 || true
run lvsctl service add -t 192.0.2.20:80 -s fastest || true

step "Fail the leader (kill -9 director $L)"
kill -9 "${PIDS[$L]}"
wait "${PIDS[$L]}" 2>/dev/null || true
unset "PIDS[$L]"
T0=$(date +%s%N)
N=$(wait_leader "$L")
T1=$(date +%s%N)
echo "new leader: director $N (seen by lvsctl after $(( (T1 - T0) / 1000000 )) ms)"
run lvsctl real edit -t 192.0.2.10:80 -r 10.0.0.12 -w 2
run lvsctl cluster status

step "Restart director $L: it catches up from the new leader"
start "$L"
for _ in $(seq 1 100); do
    if lvsctl --endpoints "127.0.0.1:700$L" --stale list 2>/dev/null | grep -q "10.0.0.12:80 .* 2 "; then break; fi
    sleep 0.1
done
run lvsctl --endpoints "127.0.0.1:700$L" --stale list

step "Declarative config: dry run, apply, export"
run lvsctl apply -f "$HERE/examples/services.toml" --dry-run
run lvsctl apply -f "$HERE/examples/services.toml"
printf '$ lvsctl export > %s\n' "$DEMO/exported.toml"
lvsctl export >"$DEMO/exported.toml"
echo "exported to $DEMO/exported.toml; applying it again changes nothing:"
run lvsctl apply -f "$DEMO/exported.toml"
run lvsctl list
run lvsctl history -n 5

step "Stop the cluster (SIGTERM)"
for id in "${!PIDS[@]}"; do kill -TERM "${PIDS[$id]}"; done
for id in "${!PIDS[@]}"; do wait "${PIDS[$id]}" && echo "director $id exited cleanly"; done
PIDS=()
echo
echo "demo complete; logs and data are in $DEMO"
