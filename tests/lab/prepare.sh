#!/usr/bin/env bash
# Prepares the real-kernel VM lab (see tests/lab/README.md) in a cache folder:
#   1. installs the host packages the lab needs (only those missing),
#   2. downloads Debian's current linux-image-amd64 kernel package and extracts it,
#   3. builds the base initramfs: busybox, the kernel modules for IPVS, netfilter, nftables, veth,
#      bridge and tunnels, iproute2, nft, ipvsadm, their shared libraries and glibc, and /init.
# Idempotent: a stamp records what the initramfs was built from; a second run does nothing.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: prepare.sh [--cache DIR] [--force] [--refresh-kernel] [--host-tools]

Prepares the VM lab cache (default ${LVS_LAB_CACHE:-/var/cache/lvs-lab}). Needs root and apt-get.

  --cache DIR        cache folder
  --force            rebuild the base initramfs even when the stamp says it is current
  --refresh-kernel   download the kernel again (picks up a newer linux-image-amd64)
  --host-tools       only install what running scenarios on the host needs (ip, nft, ipvsadm,
                     busybox): used by run.sh --host on a kernel that has IPVS
  -h, --help         this text

Cache layout:
  kernel/            the extracted kernel package (boot/vmlinuz-*, lib/modules/* with modules.dep)
  kernel.version     its version (e.g. 6.1.0-48-amd64)
  initramfs-base.cpio.gz, initramfs-base.files   the base image and the list of files in it
  stamp              what the image was built from
  logs/              logs of run.sh
EOF
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${LVS_LAB_CACHE:-/var/cache/lvs-lab}
FORCE=0
REFRESH_KERNEL=0
HOST_TOOLS_ONLY=0

while [ $# -gt 0 ]; do
    case "$1" in
        --cache) [ $# -ge 2 ] || { usage >&2; exit 2; }; CACHE=$2; shift 2 ;;
        --force) FORCE=1; shift ;;
        --refresh-kernel) REFRESH_KERNEL=1; FORCE=1; shift ;;
        --host-tools) HOST_TOOLS_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "prepare.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

log() { printf 'lab-prepare: %s\n' "$*" >&2; }
die() { printf 'lab-prepare: ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and creates device nodes)"
command -v apt-get >/dev/null || die "apt-get not found: the lab needs a Debian-like host"
export DEBIAN_FRONTEND=noninteractive

# Host tools whose binaries and libraries go into the image, plus what building and booting needs.
# (Debian 12's ipvsadm is not the one the lab uses, see fetch_ipvsadm, but it brings the libnl
# and popt libraries that one needs.)
IMAGE_PKGS="busybox-static iproute2 nftables ipvsadm"
BUILD_PKGS="qemu-system-x86 cpio kmod binutils gzip"

# ---------------------------------------------------------------------------------------------
# Packages

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# Lab runs may start side by side (cargo runs test binaries' tests in parallel), and apt allows one
# user at a time: installs wait for each other on a machine-wide lock, then look again.
APT_LOCK=/run/lock/lvs-lab-apt.lock
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    mkdir -p "$(dirname "$APT_LOCK")"
    exec 8>"$APT_LOCK"
    flock 8
    missing=()
    for p in "$@"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        flock -u 8
        return 0
    fi
    log "installing packages: ${missing[*]}"
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
    for p in "${missing[@]}"; do
        pkg_installed "$p" || die "package $p is still not installed after apt-get install"
    done
    flock -u 8
}

# The ipvsadm the lab reads the kernel with. Debian 12's 1.31-1+b1 (built before the package
# passed HAVE_NL=1, changelog 1.31-3) fails every real-server add on the 6.1 kernel with "Invalid
# operation" (the kernel logs "ip_vs_add_dest(): tunnel port is zero"). Debian 13's build works
# and runs on Debian 12's glibc and libnl, so the lab fetches that one into the cache.
IPVSADM_SUITE=trixie
IPVSADM=$CACHE/tools/ipvsadm
fetch_ipvsadm() {
    [ -x "$IPVSADM" ] && return 0
    local apt=$CACHE/apt-$IPVSADM_SUITE dl
    log "fetching ipvsadm from Debian $IPVSADM_SUITE (netlink build; see prepare.sh)"
    rm -rf "$apt"
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/dl"
    echo "deb http://deb.debian.org/debian $IPVSADM_SUITE main" >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update -q >&2 || die "apt-get update for $IPVSADM_SUITE failed"
    (cd "$apt/dl" && apt-get "${opts[@]}" download -q ipvsadm >&2) \
        || die "apt-get download ipvsadm ($IPVSADM_SUITE) failed"
    dl=$(ls "$apt"/dl/ipvsadm_*.deb 2>/dev/null | head -n1)
    [ -n "$dl" ] || die "no ipvsadm .deb downloaded from $IPVSADM_SUITE"
    dpkg -x "$dl" "$apt/x" || die "dpkg -x $dl failed"
    mkdir -p "$CACHE/tools"
    install -m 755 "$apt/x/usr/sbin/ipvsadm" "$IPVSADM"
    # (ipvsadm --version needs IPVS in the running kernel, so only the libraries are checked.)
    if ldd "$IPVSADM" 2>&1 | grep -q 'not found'; then
        die "$IPVSADM cannot run here: $(ldd "$IPVSADM" 2>&1 | grep 'not found' | tr '\n' ' ')"
    fi
    log "ipvsadm: $(basename "$dl")"
    rm -rf "$apt"
}

mkdir -p "$CACHE" || die "cannot create the cache folder $CACHE"
CACHE=$(cd "$CACHE" && pwd)
IPVSADM=$CACHE/tools/ipvsadm

if [ "$HOST_TOOLS_ONLY" = 1 ]; then
    # shellcheck disable=SC2086
    ensure_packages $IMAGE_PKGS
    exec 9>"$CACHE/.lock"
    flock 9
    fetch_ipvsadm
    exit 0
fi

# shellcheck disable=SC2086
ensure_packages $IMAGE_PKGS $BUILD_PKGS

# One prepare at a time per cache (run.sh takes the same lock shared while it reads the image).
exec 9>"$CACHE/.lock"
flock 9
fetch_ipvsadm

# ---------------------------------------------------------------------------------------------
# Kernel

KROOT=$CACHE/kernel

resolve_kernel_pkg() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

fetch_kernel() {
    local pkg dl kver updated=0
    pkg=$(resolve_kernel_pkg)
    if [ -z "$pkg" ]; then
        log "apt knows no linux-image-amd64 yet: running apt-get update"
        apt-get update -q >&2 || die "apt-get update failed"
        updated=1
        pkg=$(resolve_kernel_pkg)
    fi
    [ -n "$pkg" ] || die "cannot resolve the versioned kernel package: apt-cache depends linux-image-amd64 shows no linux-image-<version> dependency"
    dl=$CACHE/download.tmp
    rm -rf "$dl"
    mkdir -p "$dl"
    # apt drops privileges to _apt for downloads when it can write the folder.
    if id _apt >/dev/null 2>&1; then chown _apt "$dl"; fi
    log "downloading $pkg (the kernel linux-image-amd64 depends on)"
    if ! (cd "$dl" && apt-get download -q "$pkg" >&2); then
        # Stale package lists name a version the mirror no longer has.
        [ "$updated" = 0 ] || die "apt-get download $pkg failed"
        log "download failed: running apt-get update and trying again"
        apt-get update -q >&2 || die "apt-get update failed"
        pkg=$(resolve_kernel_pkg)
        [ -n "$pkg" ] || die "cannot resolve the versioned kernel package after apt-get update"
        log "downloading $pkg"
        (cd "$dl" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
    fi
    local deb
    deb=$(ls "$dl"/"$pkg"_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $pkg produced no .deb in $dl"
    log "extracting $(basename "$deb") into $KROOT"
    rm -rf "$KROOT.tmp"
    dpkg -x "$deb" "$KROOT.tmp" || die "dpkg -x $deb failed"
    kver=$(ls "$KROOT.tmp/lib/modules" 2>/dev/null | head -n1)
    [ -n "$kver" ] || die "$deb contains no lib/modules/<version>"
    [ -f "$KROOT.tmp/boot/vmlinuz-$kver" ] || die "$deb contains no boot/vmlinuz-$kver"
    # The package ships no modules.dep; busybox modprobe and our closure below need it.
    log "depmod -b $KROOT $kver"
    depmod -b "$KROOT.tmp" "$kver" || die "depmod failed for $kver"
    rm -rf "$KROOT" "$dl"
    mv "$KROOT.tmp" "$KROOT"
    echo "$kver" >"$CACHE/kernel.version"
}

if [ "$REFRESH_KERNEL" = 1 ] || [ ! -s "$CACHE/kernel.version" ] \
    || [ ! -f "$KROOT/boot/vmlinuz-$(cat "$CACHE/kernel.version")" ] \
    || [ ! -f "$KROOT/lib/modules/$(cat "$CACHE/kernel.version")/modules.dep" ]; then
    fetch_kernel
fi
KVER=$(cat "$CACHE/kernel.version")
MROOT=$KROOT/lib/modules/$KVER

# ---------------------------------------------------------------------------------------------
# Is the base image current?

pkg_versions() {
    local p
    for p in $IMAGE_PKGS libc6 libgcc-s1; do
        printf '%s=%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo none)"
    done
}
STAMP_WANT=$(
    echo "kernel=$KVER"
    pkg_versions
    sha256sum "$HERE/prepare.sh" "$HERE/init" "$IPVSADM" | awk '{print $1}'
)
IMAGE=$CACHE/initramfs-base.cpio.gz
if [ "$FORCE" = 0 ] && [ -f "$IMAGE" ] && [ -f "$CACHE/initramfs-base.files" ] \
    && [ -f "$CACHE/stamp" ] && [ "$(cat "$CACHE/stamp")" = "$STAMP_WANT" ]; then
    log "cache $CACHE is ready (kernel $KVER, $(du -h "$IMAGE" | cut -f1) base image)"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Base initramfs

STAGE=$CACHE/stage.tmp
log "building the base initramfs in $STAGE"
rm -rf "$STAGE"
mkdir -p "$STAGE"
cd "$STAGE"
mkdir -p bin sbin usr/bin usr/sbin lib lib64 etc proc sys dev tmp run root var lab/bin mnt
chmod 1777 tmp

# /dev/console exists before devtmpfs is mounted, so the kernel can open it for /init.
mknod -m 600 dev/console c 5 1
mknod -m 666 dev/null c 1 3

# Real tools from the host, in /sbin (ahead of busybox's /bin in PATH).
REAL_TOOLS="ip tc bridge ss nft ipvsadm"
for t in $REAL_TOOLS; do
    if [ "$t" = ipvsadm ]; then
        src=$IPVSADM
    else
        src=$(command -v "$t" 2>/dev/null) || die "$t not found on the host (packages: $IMAGE_PKGS)"
    fi
    cp -L "$src" "sbin/$t"
done

# /bin/sh is dash, as on a Debian host, and bash is there for scenario scripts: Debian's busybox
# shell runs its own applets ahead of PATH (so `ip` in a busybox sh script would be busybox's
# `ip`, which lacks netns).
SHELLS="dash bash"
for t in $SHELLS; do
    src=$(command -v "$t" 2>/dev/null) || die "$t not found on the host"
    cp -L "$src" "bin/$t"
done
ln -s dash bin/sh

# busybox applets in /bin, except those a real tool above replaces (busybox's `ip` lacks netns).
BUSYBOX=$(command -v busybox) || die "busybox not found (package busybox-static)"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
    die "$BUSYBOX is dynamically linked: install busybox-static"
fi
cp -L "$BUSYBOX" bin/busybox
n_applets=0
for a in $("$BUSYBOX" --list); do
    case " $REAL_TOOLS busybox " in *" $a "*) continue ;; esac
    [ -e "bin/$a" ] || { ln -s busybox "bin/$a"; n_applets=$((n_applets + 1)); }
done
log "busybox: $n_applets applets in /bin"

# Configuration the tools and glibc read.
cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >etc/group <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >etc/hosts <<'EOF'
127.0.0.1	localhost lvs-lab
::1	localhost ip6-localhost ip6-loopback
EOF
cat >etc/nsswitch.conf <<'EOF'
passwd: files
group: files
hosts: files
networks: files
protocols: files
services: files
EOF
: >etc/resolv.conf
echo lvs-lab >etc/hostname
for f in /etc/protocols /etc/services; do
    [ -f "$f" ] && cp -L "$f" "etc/"
done
[ -d /etc/iproute2 ] && cp -rL /etc/iproute2 etc/
[ -d /usr/share/iproute2 ] && mkdir -p usr/share && cp -rL /usr/share/iproute2 usr/share/

# Shared libraries: what ldd reports for every dynamic tool, plus glibc and libgcc_s for the
# project's Rust binaries (run.sh adds anything else they need to its overlay).
LIBC=$(ldd "$IPVSADM" | awk '$1 == "libc.so.6" { print $3 }')
[ -n "$LIBC" ] || die "cannot locate libc.so.6 with ldd"
LIBDIR=$(dirname "$LIBC")
copy_lib() {
    local src=$1
    [ -e "$src" ] || die "library $src not found"
    mkdir -p ".$(dirname "$src")"
    [ -e ".$src" ] || cp -L "$src" ".$src"
}
ldd_paths() {
    # Paths of the libraries and of the loader (lines "x => /path (addr)" and "/path (addr)").
    ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
}
for t in $REAL_TOOLS; do
    for l in $(ldd_paths "sbin/$t"); do copy_lib "$l"; done
done
for t in $SHELLS; do
    for l in $(ldd_paths "bin/$t"); do copy_lib "$l"; done
done
for l in libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 \
    libnss_files.so.2 libnss_dns.so.2 libutil.so.1; do
    copy_lib "$LIBDIR/$l"
done
for l in $(ldd_paths "$IPVSADM"); do
    case "$l" in */ld-linux*) copy_lib "$l" ;; esac
done
[ -e lib64/ld-linux-x86-64.so.2 ] || die "the dynamic loader /lib64/ld-linux-x86-64.so.2 was not copied"

# Kernel modules: the roots below and everything they depend on (from modules.dep).
MODULE_ROOTS=(
    # IPVS core, schedulers, helpers (all of net/netfilter/ipvs)
    'kernel/net/netfilter/ipvs/*'
    crc32c_generic libcrc32c
    nf_conntrack nf_nat nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack_netlink
    # nftables and its expressions (the tests' partition helper uses nft)
    nf_tables nfnetlink
    'kernel/net/netfilter/nft_*' 'kernel/net/ipv4/netfilter/nft_*'
    'kernel/net/ipv6/netfilter/nft_*'
    'kernel/net/ipv4/netfilter/nf_reject_ipv4*' 'kernel/net/ipv6/netfilter/nf_reject_ipv6*'
    # links
    veth bridge llc stp 8021q dummy macvlan
    # tunnels (IPVS TUN forwarding: ipip, GRE, GUE)
    ipip ip_gre gre ip_tunnel tunnel4 tunnel6 ip6_tunnel ip6_gre sit fou fou6
    udp_tunnel ip6_udp_tunnel
    # traffic shaping for scenarios that add delay or loss
    sch_netem
    # entropy from the host (virtio-rng-pci)
    virtio virtio_ring virtio_pci virtio_rng
)
MODLIST=$CACHE/modules.tmp
: >"$MODLIST"
declare -A BUILTIN=()
while read -r m; do
    m=${m##*/}; m=${m%.ko}; BUILTIN[${m//-/_}]=1
done <"$MROOT/modules.builtin"
declare -A BYNAME=()
while IFS=: read -r path _; do
    m=${path##*/}; m=${m%%.ko*}; BYNAME[${m//-/_}]=$path
done <"$MROOT/modules.dep"
builtin_count=0
for r in "${MODULE_ROOTS[@]}"; do
    case "$r" in
        *'*'*)
            matched=0
            for f in "$MROOT"/$r; do
                [ -f "$f" ] || continue
                echo "${f#"$MROOT"/}" >>"$MODLIST"; matched=1
            done
            [ "$matched" = 1 ] || die "no kernel module matches $r in $KVER"
            ;;
        *)
            key=${r//-/_}
            if [ -n "${BYNAME[$key]:-}" ]; then
                echo "${BYNAME[$key]}" >>"$MODLIST"
            elif [ -n "${BUILTIN[$key]:-}" ]; then
                builtin_count=$((builtin_count + 1))
            else
                die "kernel module $r is neither a module nor built into $KVER"
            fi
            ;;
    esac
done
# Close over modules.dep ("path: dep dep ...").
closure=$(awk -v list="$MODLIST" '
    BEGIN { while ((getline l < list) > 0) want[l] = 1 }
    { key = $1; sub(/:$/, "", key); deps[key] = ""; for (i = 2; i <= NF; i++) deps[key] = deps[key] " " $i }
    END {
        n = 0; for (m in want) queue[n++] = m
        for (i = 0; i < n; i++) {
            m = queue[i]
            if (!(m in deps)) { print "MISSING " m; continue }
            k = split(deps[m], d, " ")
            for (j = 1; j <= k; j++) if (!(d[j] in want)) { want[d[j]] = 1; queue[n++] = d[j] }
        }
        for (m in want) print m
    }' "$MROOT/modules.dep" | sort)
rm -f "$MODLIST"
if grep -q '^MISSING ' <<<"$closure"; then
    die "modules not in modules.dep: $(grep '^MISSING ' <<<"$closure" | cut -d' ' -f2 | tr '\n' ' ')"
fi
n_mods=0
while read -r rel; do
    [ -n "$rel" ] || continue
    dst=lib/modules/$KVER/$rel
    mkdir -p "$(dirname "$dst")"
    case "$rel" in
        *.ko) cp "$MROOT/$rel" "$dst" ;;
        *.ko.xz) xz -dc "$MROOT/$rel" >"${dst%.xz}" || die "cannot decompress $rel (xz-utils)" ;;
        *.ko.zst) zstd -qdc "$MROOT/$rel" >"${dst%.zst}" || die "cannot decompress $rel (zstd)" ;;
        *.ko.gz) gzip -dc "$MROOT/$rel" >"${dst%.gz}" || die "cannot decompress $rel" ;;
        *) die "unexpected module file $rel" ;;
    esac
    n_mods=$((n_mods + 1))
done <<<"$closure"
for f in modules.builtin modules.builtin.modinfo modules.order; do
    [ -f "$MROOT/$f" ] && cp "$MROOT/$f" "lib/modules/$KVER/"
done
depmod -b "$STAGE" "$KVER" || die "depmod on the initramfs module tree failed"
log "kernel modules: $n_mods files ($builtin_count of the requested ones are built in)"

# /init
cp "$HERE/init" init
chmod 755 init

# Pack (newc, owned by root, sorted for reproducibility), then publish atomically.
log "packing $IMAGE"
find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort >"$CACHE/initramfs-base.files.tmp"
# shellcheck disable=SC2094
cpio --quiet -o -H newc -R 0:0 --reproducible <"$CACHE/initramfs-base.files.tmp" \
    | gzip -6 -n >"$IMAGE.tmp" || die "cpio/gzip failed"
cd "$CACHE"
rm -rf "$STAGE"
mv "$IMAGE.tmp" "$IMAGE"
mv "$CACHE/initramfs-base.files.tmp" "$CACHE/initramfs-base.files"
printf '%s\n' "$STAMP_WANT" >"$CACHE/stamp"
log "ready: kernel $KVER ($KROOT/boot/vmlinuz-$KVER), base image $(du -h "$IMAGE" | cut -f1)" \
    "($(wc -l <"$CACHE/initramfs-base.files") entries)"
