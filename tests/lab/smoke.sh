#!/bin/sh
# Smoke check of the lab (tests/lab/README.md), run as the lab command:
#   tests/lab/run.sh --file tests/lab/smoke.sh -- smoke.sh
# Checks that the kernel has IPVS with every scheduler, that IPVS tables are per network
# namespace, that namespaces, veth and a bridge carry ping and TCP between three namespaces, that
# nftables rules load and drop traffic, and that the project's (dynamically linked) Rust binaries
# run. Works in the VM and on a host with IPVS (LVS_LAB=host): everything except the VM-only
# root-namespace check happens in namespaces named lvslab-smoke-* that are removed at the end.
set -eu

NS=lvslab-smoke
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'SMOKE FAILED: %s\n' "$*" >&2; exit 1; }
in_ns() { ns=$1; shift; ip netns exec "$NS-$ns" "$@"; }

cleanup() {
    for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case "$n" in "$NS"-*) ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
                              ip netns del "$n" 2>/dev/null || true ;; esac
    done
}
trap cleanup EXIT
cleanup

# busybox provides ping and nc in the VM and on a host alike.
BB=$(command -v busybox) || fail "busybox not found"

step "kernel"
uname -r
date -u
[ "$(date +%Y)" -ge 2024 ] || fail "the clock says $(date): the guest did not get the host's time"
[ -e /proc/net/ip_vs ] || modprobe ip_vs 2>/dev/null || true
[ -e /proc/net/ip_vs ] || fail "no IPVS in this kernel (/proc/net/ip_vs missing)"
lsmod 2>/dev/null | grep -E '^(ip_vs|nf_conntrack|veth|bridge|nf_tables) ' || true

if [ "${LVS_LAB:-}" = vm ]; then
    step "IPVS in the root namespace (VM only)"
    ipvsadm -A -t 10.0.0.1:80 -s rr && ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -g && ipvsadm -Ln
    ipvsadm -Ln | grep -q '^TCP  10.0.0.1:80 rr' || fail "root namespace: service missing"
    ipvsadm -Ln | grep -Eq -- '-> 10.0.0.2:80 +Route' || fail "root namespace: real server missing"
    ipvsadm -C
fi

step "network namespaces"
for n in a b sw h1 h2 h3; do ip netns add "$NS-$n"; done
ip netns list | grep -c "^$NS-" | grep -qx 6 || fail "ip netns list does not show the 6 namespaces"
in_ns a ip link set lo up

step "IPVS service with every scheduler (namespace a)"
in_ns a ipvsadm -A -t 10.0.0.1:80 -s rr
in_ns a ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -g
in_ns a ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.3:80 -i -w 2
in_ns a ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.4:8080 -m -w 0
i=1
for s in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf; do
    in_ns a ipvsadm -A -u "10.0.1.$i:53" -s "$s" || fail "scheduler $s: ipvsadm -A failed"
    i=$((i + 1))
done
in_ns a ipvsadm -A -t '[2001:db8::1]:443' -s wlc -p 300
in_ns a ipvsadm -A -f 5 -s rr
in_ns a ipvsadm -Ln
out=$(in_ns a ipvsadm -Ln)
echo "$out" | grep -q '^TCP  10.0.0.1:80 rr' || fail "service tcp 10.0.0.1:80 missing"
echo "$out" | grep -Eq -- '-> 10.0.0.2:80 +Route +1 ' || fail "DR real server missing"
echo "$out" | grep -Eq -- '-> 10.0.0.3:80 +Tunnel +2 ' || fail "tunnel real server missing"
echo "$out" | grep -Eq -- '-> 10.0.0.4:8080 +Masq +0 ' || fail "NAT real server missing"
for s in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf; do
    echo "$out" | grep -Eq "^UDP  10\.0\.1\.[0-9]+:53 $s\$" || fail "service with scheduler $s missing"
done

step "IPVS is per network namespace (namespace b sees nothing of a)"
in_ns b ipvsadm -Ln
if in_ns b ipvsadm -Ln | grep -q '10.0.0.1:80'; then
    fail "a service added in namespace a is visible in namespace b"
fi
[ "$(in_ns b ipvsadm -Ln | grep -c -E '^(TCP|UDP|FWM|SCTP) ')" = 0 ] || fail "namespace b has services"

step "bridge + veth: three namespaces on one switch"
in_ns sw ip link set lo up
in_ns sw ip link add br0 type bridge stp_state 0 forward_delay 0
in_ns sw ip link set br0 up
for k in 1 2 3; do
    ip -n "$NS-h$k" link add eth0 type veth peer name "p$k" netns "$NS-sw"
    ip -n "$NS-h$k" link set lo up
    ip -n "$NS-h$k" link set eth0 up
    ip -n "$NS-h$k" addr add "10.99.0.$k/24" dev eth0
    ip -n "$NS-sw" link set "p$k" master br0
    ip -n "$NS-sw" link set "p$k" up
done
ip -n "$NS-sw" link show master br0
for k in 1 2 3; do
    for j in 1 2 3; do
        [ "$k" = "$j" ] && continue
        in_ns "h$k" "$BB" ping -c 1 -W 5 "10.99.0.$j" >/dev/null \
            || fail "ping from h$k to 10.99.0.$j failed"
    done
done
echo "ping: every pair answers"

# One TCP listener per namespace; each namespace sends a line to the next one.
tmp=$(mktemp -d)
for k in 1 2 3; do
    in_ns "h$k" "$BB" nc -l -p 7000 >"$tmp/got$k" &
done
sleep 1
for k in 1 2 3; do
    j=$((k % 3 + 1))
    echo "hello from h$k" | in_ns "h$k" "$BB" nc -w 5 "10.99.0.$j" 7000 \
        || fail "TCP from h$k to h$j failed"
done
wait
for k in 1 2 3; do
    p=$(( (k + 1) % 3 + 1 ))
    got=$(cat "$tmp/got$k")
    [ "$got" = "hello from h$p" ] || fail "h$k received '$got', expected 'hello from h$p'"
    echo "h$k received: $got"
done

step "nftables"
[ "${LVS_LAB:-}" = vm ] && nft list ruleset
in_ns h2 nft -f - <<'EOF'
table inet lvs_partition {
  chain input {
    type filter hook input priority -10; policy accept;
    iifname "eth0" tcp dport { 7001, 7002 } drop
    ct state invalid counter drop
    udp dport 9 limit rate over 1000/second drop
  }
}
EOF
in_ns h2 nft list ruleset
in_ns h2 nft list ruleset | grep -q 'tcp dport { 7001, 7002 } drop' || fail "nft rule not listed"
in_ns h2 "$BB" nc -l -p 7001 >"$tmp/blocked" &
sleep 1
if echo blocked | in_ns h1 "$BB" nc -w 3 10.99.0.2 7001 2>/dev/null; then
    fail "TCP to a port nft drops got through"
fi
in_ns h2 nft delete table inet lvs_partition
echo unblocked | in_ns h1 "$BB" nc -w 5 10.99.0.2 7001 || fail "TCP after deleting the nft table failed"
wait
[ "$(cat "$tmp/blocked")" = unblocked ] || fail "listener got '$(cat "$tmp/blocked")'"
echo "nft drop rule blocks, deleting it unblocks"
rm -rf "$tmp"

step "the project's binaries (LVS_BIN_DIR=${LVS_BIN_DIR:-unset})"
[ -n "${LVS_BIN_DIR:-}" ] || fail "LVS_BIN_DIR is not set"
for b in director lvsctl realserver-agent; do
    [ -x "$LVS_BIN_DIR/$b" ] || fail "$LVS_BIN_DIR/$b missing"
    "$b" --version || fail "$b --version failed"
done
in_ns h1 realserver-agent --version >/dev/null || fail "realserver-agent in a namespace failed"

printf '\nSMOKE OK\n'
