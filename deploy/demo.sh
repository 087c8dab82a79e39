#!/usr/bin/env bash
# The demo: a three-director cluster on loopback, driven by lvsctl, with a failover; then (as
# root) three directors in network namespaces whose elected leader holds a VIP, and the VIP
# moving to the new leader when the old one is killed.
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
# Part 2 runs everything inside network namespaces named lvsdemo-*; removing them (after killing
# whatever runs inside) leaves nothing behind, also when the demo fails half-way.
NS_PREFIX=lvsdemo
netns_cleanup() {
    [ "$EUID" -eq 0 ] || return 0
    local ns _ pid
    while read -r ns _; do
        case "$ns" in
        "$NS_PREFIX"-*)
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
            ;;
        esac
    done < <(ip netns list 2>/dev/null)
}
cleanup() {
    for id in "${!PIDS[@]}"; do kill -9 "${PIDS[$id]}" 2>/dev/null || true; done
    netns_cleanup
}
trap cleanup EXIT

# Stop directors left over from an earlier demo run, then start from empty stores.
if [ -d "$DEMO" ]; then
    for f in "$DEMO"/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
fi
netns_cleanup
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

step "A cluster CA and certificates (lvsctl pki): mTLS on every gRPC port"
PKI=$DEMO/pki
run lvsctl pki init --dir "$PKI"
for id in 1 2 3; do run lvsctl pki issue director "director-$id" --ip 127.0.0.1 --dir "$PKI"; done
run lvsctl pki issue operator demo-admin --role admin --dir "$PKI"
run lvsctl pki issue operator demo-reader --role read --dir "$PKI"
# lvsctl picks its certificate up from the environment; the example configs name the others.
export LVSCTL_CA=$PKI/ca.pem LVSCTL_CERT=$PKI/demo-admin.pem LVSCTL_KEY=$PKI/demo-admin.key
echo "LVSCTL_CA=$LVSCTL_CA LVSCTL_CERT=$LVSCTL_CERT LVSCTL_KEY=$LVSCTL_KEY"
run grep -A3 '^\[tls\]' "$HERE/examples/director-1.toml"

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

step "Roles: a read-only operator reads but may not write; no certificate, no answer"
reader() { LVSCTL_CERT=$PKI/demo-reader.pem LVSCTL_KEY=$PKI/demo-reader.key "$BIN/lvsctl" "$@"; }
printf '$ LVSCTL_CERT=%s lvsctl list\n' "$PKI/demo-reader.pem"
reader list
printf '$ LVSCTL_CERT=%s lvsctl real del -t 192.0.2.10:80 -r 10.0.0.12\n' "$PKI/demo-reader.pem"
reader real del -t 192.0.2.10:80 -r 10.0.0.12 || true
printf '$ lvsctl --insecure list   (plaintext, no certificate)\n'
env -u LVSCTL_CA -u LVSCTL_CERT -u LVSCTL_KEY "$BIN/lvsctl" --insecure --timeout 2 list || true
echo "(the leader logged who was refused:)"
grep -h "refused" "$DEMO"/director-*.log | tail -n 2 | sed 's/^/  /' || true

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

# ---------------------------------------------------------------------------------------------
# Part 2: the VIP follows the leader. Three directors and a client in their own network
# namespaces, plugged into a bridge in a "switch" namespace; VIP management on (the default).
# Nothing is added to the host's own network namespace.

if [ "$EUID" -ne 0 ]; then
    echo "demo: part 2 (VIP failover in network namespaces) needs root" >&2
    exit 1
fi

NET=198.18.250
VIP=$NET.100
SW=$NS_PREFIX-sw
CLIENT=$NS_PREFIX-client
NDIR=$DEMO/netns
mkdir -p "$NDIR"
export LVSCTL_ENDPOINTS=$NET.1:7000,$NET.2:7000,$NET.3:7000
declare -A NPIDS=()

mac_of() { printf '02:00:c6:12:fa:%02x' "$1"; } # 198.18.250.N -> ...:c6:12:fa:0N
# `ip` in a namespace, printed like the shell would show it.
nrun() { local ns=$1; shift; printf '%s$ %s\n' "$ns" "$*"; ip netns exec "$ns" "$@"; }
# lvsctl from the client namespace.
clvsctl() { ip netns exec "$CLIENT" "$BIN/lvsctl" "$@"; }
crun() { printf '%s$ lvsctl %s\n' "$CLIENT" "$*"; clvsctl "$@"; }

# The link-layer address the client has for the VIP ("" if none).
client_mac() {
    local w prev=""
    for w in $(ip -n "$CLIENT" neigh show "$VIP" dev eth0 2>/dev/null); do
        [ "$prev" = lladdr ] && { echo "$w"; return; }
        prev=$w
    done
}

# Whether director N's namespace has the VIP on eth0.
holds_vip() { [[ " $(ip -n "$NS_PREFIX-d$1" -br addr show dev eth0) " == *" $VIP/24 "* ]]; }

# ICMP echo with a ping socket (no ping binary needed): COUNT requests, 200 ms apart.
ping_vip() {
    printf '%s$ ping -c %s %s   (python3, ICMP datagram socket)\n' "$CLIENT" "$1" "$VIP"
    ip netns exec "$CLIENT" python3 - "$VIP" "$1" <<'PY'
import socket, struct, sys, time
vip, count = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
s.settimeout(1.0)
ok = 0
for seq in range(1, count + 1):
    t = time.monotonic()
    s.sendto(struct.pack("!BBHHH", 8, 0, 0, 0, seq) + b"lvs-demo", (vip, 0))
    try:
        while True:
            data, addr = s.recvfrom(1500)
            if data[0] == 0 and struct.unpack("!H", data[6:8])[0] == seq:
                break
        print(f"{len(data)} bytes from {addr[0]}: icmp_seq={seq} time={(time.monotonic() - t) * 1000:.2f} ms")
        ok += 1
    except socket.timeout:
        print(f"no reply from {vip}: icmp_seq={seq}")
    time.sleep(0.2)
sys.exit(0 if ok else 1)
PY
}

nleader() {
    clvsctl --timeout 2 --output json cluster status 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d.get("leader_id") or "")' 2>/dev/null || true
}

# The director that `cluster status` says holds a VIP ("" if none).
status_holder() {
    clvsctl --timeout 2 --output json cluster status 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(str(m["id"]) for m in d.get("members", []) if m.get("held_vips")))' 2>/dev/null || true
}

wait_nleader() {
    local not=${1:-} l=""
    for _ in $(seq 1 100); do
        l=$(nleader)
        if [ -n "$l" ] && [ "$l" != "$not" ]; then echo "$l"; return 0; fi
        sleep 0.1
    done
    echo "demo: no leader elected in the namespaces" >&2
    exit 1
}

step "Part 2: the VIP follows the leader (network namespaces, VIP management on)"
echo "A switch namespace with a bridge, three director namespaces and a client namespace,"
echo "each plugged into the bridge with a veth pair; addresses in $NET.0/24."
run ip netns add "$SW"
nrun "$SW" ip link add br0 type bridge stp_state 0 forward_delay 0
nrun "$SW" ip link set br0 up
add_host() { # NAME N: namespace lvsdemo-NAME, eth0 = $NET.N with MAC mac_of N, bridge port NAME
    local ns=$NS_PREFIX-$1 n=$2
    run ip netns add "$ns"
    run ip -n "$ns" link add eth0 address "$(mac_of "$n")" type veth peer name "$1" netns "$SW"
    run ip -n "$ns" addr add "$NET.$n/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    ip -n "$SW" link set "$1" master br0
    ip -n "$SW" link set "$1" up
}
for id in 1 2 3; do add_host "d$id" "$id"; done
add_host client 10
echo "(ping sockets for everyone in the client, so python3 can ping without raw sockets)"
printf '%s$ sysctl -w net.ipv4.ping_group_range="0 2147483647"\n' "$CLIENT"
ip netns exec "$CLIENT" sysctl -w net.ipv4.ping_group_range="0 2147483647"
echo "(every interface is up, the switch-side ends are ports of br0)"
run ip -n "$SW" -br link show master br0

step "Three director configs (Raft on :7100 and the API on :7000 of each namespace's address)"
for id in 1 2 3; do run lvsctl pki issue director "nd-$id" --ip "$NET.$id" --dir "$PKI"; done
for id in 1 2 3; do
    {
        echo "node_id = $id"
        echo "raft_addr = \"$NET.$id:7100\""
        echo "api_addr = \"$NET.$id:7000\""
        echo "data_dir = \"$NDIR/director-$id\""
        echo "request_timeout_ms = 5000"
        printf '\n[tls]\nca = "%s"\ncert = "%s"\nkey = "%s"\n' "$PKI/ca.pem" "$PKI/nd-$id.pem" "$PKI/nd-$id.key"
        for p in 1 2 3; do
            [ "$p" = "$id" ] && continue
            printf '\n[[peers]]\nid = %s\nraft_addr = "%s:7100"\napi_addr = "%s:7000"\n' "$p" "$NET.$p" "$NET.$p"
        done
        printf '\n[raft]\nprofile = "default"\n'
    } >"$NDIR/director-$id.toml"
done
run cat "$NDIR/director-1.toml"

nstart() {
    local id=$1; shift
    ip netns exec "$NS_PREFIX-d$id" "$BIN/director" --config "$NDIR/director-$id.toml" "$@" \
        >>"$NDIR/director-$id.log" 2>&1 &
    NPIDS[$id]=$!
    echo "started director $id in namespace $NS_PREFIX-d$id (pid ${NPIDS[$id]}, log $NDIR/director-$id.log)"
}

step "Start the directors (ip netns exec) and configure a VIP from the client"
nstart 1 --bootstrap
nstart 2
nstart 3
L=$(wait_nleader)
echo "leader: director $L"
crun vip set web --interface eth0 "$VIP/24"
for _ in $(seq 1 100); do holds_vip "$L" && break; sleep 0.05; done
holds_vip "$L" || { echo "demo: director $L does not hold $VIP" >&2; exit 1; }
for _ in $(seq 1 100); do [ "$(status_holder)" = "$L" ] && break; sleep 0.05; done
crun cluster status
echo
echo "Only the leader's namespace has the VIP:"
for id in 1 2 3; do nrun "$NS_PREFIX-d$id" ip -br addr show dev eth0; done

step "The client reaches the VIP at the leader's MAC ($(mac_of "$L"), director $L)"
ping_vip 3
nrun "$CLIENT" ip neigh show "$VIP"
[ "$(client_mac)" = "$(mac_of "$L")" ] || { echo "demo: the client does not map $VIP to director $L" >&2; exit 1; }

step "Fail the leader (kill -9 director $L) and watch the client's neighbour entry"
# The client keeps its entry; the new leader's gratuitous ARP rewrites it (an entry younger than
# the neighbour locktime, 1 s, would ignore it, and the pings above are older than that).
sleep 1
OLD_MAC=$(mac_of "$L")
T0=$(date +%s%N)
kill -9 "${NPIDS[$L]}"
wait "${NPIDS[$L]}" 2>/dev/null || true
unset "NPIDS[$L]"
NEW_MAC=""
for _ in $(seq 1 2000); do
    m=$(client_mac)
    if [ -n "$m" ] && [ "$m" != "$OLD_MAC" ]; then NEW_MAC=$m; break; fi
    sleep 0.005
done
T1=$(date +%s%N)
[ -n "$NEW_MAC" ] || { echo "demo: the client still maps $VIP to $OLD_MAC after 10 s" >&2; exit 1; }
N=""
for id in 1 2 3; do [ "$(mac_of "$id")" = "$NEW_MAC" ] && N=$id; done
[ -n "$N" ] && [ "$N" != "$L" ] || { echo "demo: $VIP maps to unknown MAC $NEW_MAC" >&2; exit 1; }
echo "the client's entry for $VIP changed from $OLD_MAC to $NEW_MAC (director $N)" \
    "$(( (T1 - T0) / 1000000 )) ms after the kill"
nrun "$CLIENT" ip neigh show "$VIP"
ping_vip 3
echo
echo "The killed director's guard process removed the VIP from its namespace:"
nrun "$NS_PREFIX-d$L" ip -br addr show dev eth0
L2=$(wait_nleader "$L")
[ "$L2" = "$N" ] || { echo "demo: director $N answers for the VIP but director $L2 leads" >&2; exit 1; }
crun cluster status

step "Stop the directors (SIGTERM): the leader releases the VIP on the way out"
for id in "${!NPIDS[@]}"; do kill -TERM "${NPIDS[$id]}"; done
for id in "${!NPIDS[@]}"; do
    if wait "${NPIDS[$id]}"; then echo "director $id exited cleanly"; else echo "director $id exited with status $?"; fi
done
NPIDS=()
for id in 1 2 3; do nrun "$NS_PREFIX-d$id" ip -br addr show dev eth0; done
for id in 1 2 3; do
    if holds_vip "$id"; then echo "demo: $VIP is still on director $id's eth0" >&2; exit 1; fi
done
echo "no namespace holds $VIP any more"

step "Remove the namespaces"
netns_cleanup
left=""
while read -r ns _; do case "$ns" in "$NS_PREFIX"-*) left="$left $ns" ;; esac; done < <(ip netns list)
[ -z "$left" ] || { echo "demo: namespaces left behind:$left" >&2; exit 1; }
echo "no $NS_PREFIX-* namespaces left"

# Part 3: kernel IPVS. This machine's kernel may have no IPVS, so tests/lab/run.sh boots the lab VM
# (Debian's kernel under qemu) with the release binaries, or uses the host when it has IPVS.
step "Part 3: kernel IPVS, traffic through the VIP, a failover that keeps connections, and agent-driven weights, health checks and drain (lab VM or host IPVS)"
[ -x target/release/lab-scenario ] || { echo "demo: build the release binaries first (make release)" >&2; exit 1; }
# The lab VM's directors run with --insecure on their private bridge.
unset LVSCTL_CA LVSCTL_CERT LVSCTL_KEY
bash tests/lab/run.sh -- lab-scenario demo

# Part 4: the scheduling simulator needs no cluster: compare the schedulers when one of eight
# servers loses half its capacity mid-run.
step "Part 4: lvsctl simulate degraded (IPVS schedulers, a JSQ oracle and the load-informed policy)"
"$BIN/lvsctl" simulate degraded --seeds 2

echo
echo "demo complete; logs and data are in $DEMO"
