#!/usr/bin/env bash
# Runs a command with the project's binaries in the real-kernel lab: inside a VM that boots a stock
# Debian kernel with IPVS (when the host kernel has none), or directly on the host (when it has).
# The command sees LVS_BIN_DIR (the binaries), LVS_LAB=vm|host, and PATH with the binaries first.
# Exits with the command's exit code. See tests/lab/README.md.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: run.sh [--vm|--host|--auto] [--bin-dir DIR] [--file PATH]... [--env NAME=VALUE]...
              [--log FILE] [--timeout SECS] [--mem MB] [--cache DIR] -- COMMAND [ARGS...]

Runs COMMAND with LVS_BIN_DIR set to a folder holding the project's binaries and the --file
files, with that folder first in PATH, and exits with COMMAND's exit code.

  --auto          (default) --host if the host kernel has IPVS (/proc/net/ip_vs exists or
                  `modprobe ip_vs` works), else --vm
  --vm            boot the lab VM (qemu, TCG) and run COMMAND as root inside it; the binaries are
                  in /lab/bin. Prepares the cache first if needed (tests/lab/prepare.sh)
  --host          run COMMAND on this machine
  --bin-dir DIR   where director, lvsctl and realserver-agent (and any lab-* / bench-* binaries)
                  are; default: $CARGO_TARGET_DIR/release or <repo>/target/release
  --file PATH     an extra file for the binaries folder (a scenario script, a test binary, data);
                  repeatable
  --env N=V       set an environment variable for COMMAND; repeatable. RUST_LOG, RUST_BACKTRACE,
                  DIRECTOR_TEST_LOG and LVS_TEST_* / BENCH_* variables set here are passed on
  --log FILE      also write the whole output there; default <cache>/logs/run-<time>-<pid>.log
  --timeout SECS  kill the VM (or the command) after this long and exit 124; default 1200
  --mem MB        VM memory; default 2048
  --cache DIR     lab cache; default ${LVS_LAB_CACHE:-/var/cache/lvs-lab}

Exit code: COMMAND's; 124 on timeout; 125 when the lab itself failed (no exit marker from the
VM, e.g. a kernel panic, or a setup error).
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${LVS_LAB_CACHE:-/var/cache/lvs-lab}
MODE=auto
BIN_DIR=""
LOG=""
TIMEOUT=1200
MEM=${MEM:-2048}
FILES=()
ENVS=()

die() { printf 'lab: ERROR: %s\n' "$*" >&2; exit 125; }
say() { printf 'lab: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --vm) MODE=vm; shift ;;
        --host) MODE=host; shift ;;
        --auto) MODE=auto; shift ;;
        --bin-dir|--file|--env|--log|--timeout|--mem|--cache)
            [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; usage >&2; exit 2; }
            case "$1" in
                --bin-dir) BIN_DIR=$2 ;;
                --file) FILES+=("$2") ;;
                --env) ENVS+=("$2") ;;
                --log) LOG=$2 ;;
                --timeout) TIMEOUT=$2 ;;
                --mem) MEM=$2 ;;
                --cache) CACHE=$2 ;;
            esac
            shift 2 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        *) echo "run.sh: unknown argument: $1 (the command goes after --)" >&2; usage >&2; exit 2 ;;
    esac
done
[ $# -ge 1 ] || { echo "run.sh: no COMMAND given" >&2; usage >&2; exit 2; }
case "$TIMEOUT" in ''|*[!0-9]*) die "--timeout must be a number of seconds, not '$TIMEOUT'" ;; esac
case "$MEM" in ''|*[!0-9]*) die "--mem must be a number of MB, not '$MEM'" ;; esac
[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, IPVS, the lab cache)"

# ---------------------------------------------------------------------------------------------
# Inputs

if [ -z "$BIN_DIR" ]; then
    BIN_DIR=${CARGO_TARGET_DIR:-$REPO/target}/release
fi
[ -d "$BIN_DIR" ] || die "binary folder $BIN_DIR does not exist: build the release binaries first: cargo build --release"
BIN_DIR=$(cd "$BIN_DIR" && pwd)
BINARIES=()
for b in director lvsctl realserver-agent; do
    [ -x "$BIN_DIR/$b" ] || die "$BIN_DIR/$b not found: build the release binaries first: cargo build --release"
    BINARIES+=("$BIN_DIR/$b")
done
for f in "$BIN_DIR"/lab-* "$BIN_DIR"/bench-*; do
    # Executables only (cargo leaves NAME.d dependency files beside them).
    [ -f "$f" ] && [ -x "$f" ] && BINARIES+=("$f")
done
for f in ${FILES[@]+"${FILES[@]}"}; do
    [ -f "$f" ] || die "--file $f: no such file"
done

# Variables passed on to COMMAND: --env ones, and a few from this environment.
PASS_ENV=()
while IFS= read -r name; do
    case "$name" in
        RUST_LOG|RUST_BACKTRACE|DIRECTOR_TEST_LOG|LVS_TEST_*|BENCH_*) PASS_ENV+=("$name=${!name}") ;;
    esac
done < <(compgen -e)
for e in ${ENVS[@]+"${ENVS[@]}"}; do
    case "$e" in
        [A-Za-z_]*=*) name=${e%%=*}
            case "$name" in *[!A-Za-z0-9_]*) die "--env $e: bad variable name" ;; esac
            PASS_ENV+=("$e") ;;
        *) die "--env $e: expected NAME=VALUE" ;;
    esac
done

WHY="(chosen with --$MODE)"
if [ "$MODE" = auto ]; then
    if [ -e /proc/net/ip_vs ] || { command -v modprobe >/dev/null && modprobe -q ip_vs 2>/dev/null; }; then
        MODE=host
        WHY="(host kernel $(uname -r) has IPVS)"
    else
        MODE=vm
        WHY="(host kernel $(uname -r) has no IPVS)"
    fi
fi

mkdir -p "$CACHE" || die "cannot create the cache folder $CACHE"
CACHE=$(cd "$CACHE" && pwd)
if [ -z "$LOG" ]; then
    mkdir -p "$CACHE/logs"
    # Keep the 50 newest logs. (ls fails when there is none yet: not an error under pipefail.)
    { ls -1t "$CACHE/logs"/run-*.log 2>/dev/null || true; } | tail -n +50 | xargs -r rm -f
    LOG=$CACHE/logs/run-$(date +%Y%m%d-%H%M%S)-$$.log
fi
mkdir -p "$(dirname "$LOG")" || die "cannot create the folder of --log $LOG"
: >"$LOG" || die "cannot write --log $LOG"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lvs-lab.XXXXXX")
CHILD=""   # the `timeout` running qemu or the command
FILTER=""  # the process copying its output to the terminal and the log
cleanup() {
    rm -rf "$WORK"
}
# `timeout` puts itself in its own process group, so a Ctrl-C does not reach it: stop it here
# (it passes the signal on to qemu or the command).
on_signal() {
    trap - INT TERM
    say "interrupted: stopping ${CHILD:+process $CHILD}"
    if [ -n "$CHILD" ]; then
        kill -TERM "$CHILD" 2>/dev/null || true
        wait "$CHILD" 2>/dev/null || true
    fi
    [ -z "$FILTER" ] || wait "$FILTER" 2>/dev/null || true
    exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# Runs "$@" under `timeout` with stdin from /dev/null, its output on stdout and appended to the
# log (through `sed` EXPR when given as the first argument `--sed EXPR`); sets RC.
run_logged() {
    local sed_expr="" fifo=$WORK/output.fifo
    if [ "$1" = --sed ]; then sed_expr=$2; shift 2; fi
    rm -f "$fifo"
    mkfifo "$fifo"
    if [ -n "$sed_expr" ]; then
        sed -u -e "$sed_expr" <"$fifo" | tee -a "$LOG" &
    else
        tee -a "$LOG" <"$fifo" &
    fi
    FILTER=$!
    timeout -k 10 "$TIMEOUT" "$@" </dev/null >"$fifo" 2>&1 &
    CHILD=$!
    RC=0
    wait "$CHILD" || RC=$?
    CHILD=""
    wait "$FILTER" || true
    FILTER=""
}

# Single-quotes a word for sh.
shquote() {
    local s=${1//\'/\'\\\'\'}
    printf "'%s'" "$s"
}

# Makes an added file executable when it is a script or an ELF binary.
file_mode() {
    local magic
    magic=$(head -c 4 "$1" | od -An -c | tr -d ' \n')
    case "$magic" in
        '#!'*|'177ELF') echo 755 ;;
        *) echo 644 ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Host mode

if [ "$MODE" = host ]; then
    say "running on the host $WHY (log: $LOG)"
    bash "$HERE/prepare.sh" --cache "$CACHE" --host-tools 2>&1 | tee -a "$LOG" >&2 \
        || die "installing the host tools failed (see above)"
    mkdir -p "$WORK/bin"
    for b in "${BINARIES[@]}"; do ln -s "$b" "$WORK/bin/$(basename "$b")"; done
    for f in ${FILES[@]+"${FILES[@]}"}; do
        install -m "$(file_mode "$f")" "$f" "$WORK/bin/$(basename "$f")"
    done
    {
        echo "lab: mode host, kernel $(uname -r), command: $*"
    } | tee -a "$LOG"
    # The cache's netlink ipvsadm (see prepare.sh) ahead of the distribution's.
    [ -x "$CACHE/tools/ipvsadm" ] && ln -s "$CACHE/tools/ipvsadm" "$WORK/bin/ipvsadm"
    run_logged env LVS_BIN_DIR="$WORK/bin" LVS_LAB=host PATH="$WORK/bin:$PATH" \
        ${PASS_ENV[@]+"${PASS_ENV[@]}"} "$@"
    if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
        say "TIMEOUT: the command did not finish within $TIMEOUT s and was killed (log: $LOG)" \
            2>&1 | tee -a "$LOG" >&2
        exit 124
    fi
    say "exit code $RC (log: $LOG)"
    exit "$RC"
fi

# ---------------------------------------------------------------------------------------------
# VM mode

say "running in the lab VM $WHY (log: $LOG)"
bash "$HERE/prepare.sh" --cache "$CACHE" 2>&1 | tee -a "$LOG" >&2 \
    || die "preparing the lab cache failed (see above)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (package qemu-system-x86)"
for t in cpio objcopy ldd timeout flock; do
    command -v "$t" >/dev/null || die "$t not found"
done

# The overlay: /lab/bin (binaries without debug info, added files), libraries the base image
# lacks, and /lab/run.
OVL=$WORK/overlay
mkdir -p "$OVL/lab/bin"
for b in "${BINARIES[@]}"; do
    objcopy --strip-debug "$b" "$OVL/lab/bin/$(basename "$b")" || die "objcopy --strip-debug $b failed"
done
for f in ${FILES[@]+"${FILES[@]}"}; do
    install -m "$(file_mode "$f")" "$f" "$OVL/lab/bin/$(basename "$f")"
done
declare -A IN_BASE=()
while IFS= read -r p; do IN_BASE[$p]=1; done <"$CACHE/initramfs-base.files"
for f in "$OVL"/lab/bin/*; do
    [ "$(file_mode "$f")" = 755 ] || continue
    # Lines "name => /path (addr)" and "/path (addr)"; static binaries print nothing useful.
    while IFS= read -r l; do
        [ -n "$l" ] || continue
        rel=${l#/}
        if [ -z "${IN_BASE[$rel]:-}" ] && [ ! -e "$OVL/$rel" ]; then
            say "adding $l (needed by $(basename "$f"))"
            mkdir -p "$OVL/$(dirname "$rel")"
            cp -L "$l" "$OVL/$rel"
        fi
    done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
    if ldd "$f" 2>/dev/null | grep -q 'not found'; then
        die "$(basename "$f") needs libraries this host lacks: $(ldd "$f" | grep 'not found' | tr -s ' \t' ' ')"
    fi
done
{
    echo "#!/bin/sh"
    echo "# Written by tests/lab/run.sh for one boot."
    echo "export LVS_BIN_DIR=/lab/bin LVS_LAB=vm"
    for e in ${PASS_ENV[@]+"${PASS_ENV[@]}"}; do
        echo "export ${e%%=*}=$(shquote "${e#*=}")"
    done
    printf 'exec'
    for a in "$@"; do printf ' %s' "$(shquote "$a")"; done
    printf '\n'
} >"$OVL/lab/run"
chmod 755 "$OVL/lab/run"
(cd "$OVL" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort \
    | cpio --quiet -o -H newc -R 0:0 >"$WORK/overlay.cpio") || die "cpio of the overlay failed"

# Base image + overlay (the kernel unpacks concatenated archives in order). The shared lock keeps
# a concurrent prepare.sh from replacing the cache while it is read.
KVER=$(cat "$CACHE/kernel.version")
VMLINUZ=$CACHE/kernel/boot/vmlinuz-$KVER
(
    flock -s 9
    cp "$VMLINUZ" "$WORK/vmlinuz"
    cp "$CACHE/initramfs-base.cpio.gz" "$WORK/initrd.img"
    # After a compressed archive the kernel recognises an uncompressed one only at an offset
    # that is a multiple of 4 (it skips zero bytes): pad.
    truncate -s %4 "$WORK/initrd.img"
    cat "$WORK/overlay.cpio" >>"$WORK/initrd.img"
) 9>"$CACHE/.lock" || die "assembling the initrd failed"
say "initrd: base $(du -h "$CACHE/initramfs-base.cpio.gz" | cut -f1) + overlay $(du -h "$WORK/overlay.cpio" | cut -f1)"

echo "lab: mode vm, kernel $KVER, timeout ${TIMEOUT}s, command: $*" | tee -a "$LOG"
# shellcheck disable=SC2054  # the commas are qemu option syntax
QEMU=(
    qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "$MEM"
    -nographic -no-reboot -nic none
    -rtc base=utc,clock=host
    -device virtio-rng-pci
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img"
    -append "console=ttyS0 quiet panic=-1 random.trust_cpu=on mitigations=off"
)
start=$(date +%s)
# Serial console lines end in CR LF; the firmware also sends terminal escapes (clear screen).
run_logged --sed 's/\r$//; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' "${QEMU[@]}"
elapsed=$(($(date +%s) - start))
if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    say "TIMEOUT: the VM did not finish within $TIMEOUT s and was killed (log: $LOG)" 2>&1 | tee -a "$LOG" >&2
    exit 124
fi
marker=$(grep -a -E '^LVS-LAB-EXIT=[0-9]+$' "$LOG" | tail -n1 || true)
if [ -z "$marker" ]; then
    panic=$(grep -a -m1 'Kernel panic' "$LOG" || true)
    if [ -n "$panic" ]; then
        why="the kernel panicked: ${panic#*] }"
    else
        why="kernel panic, /init failure or qemu error"
    fi
    say "FAILED: the VM stopped after ${elapsed}s without printing LVS-LAB-EXIT (qemu exit $RC):" \
        "$why; see the log $LOG" 2>&1 | tee -a "$LOG" >&2
    exit 125
fi
rc=${marker#LVS-LAB-EXIT=}
say "exit code $rc after ${elapsed}s in the VM (log: $LOG)"
exit "$rc"
