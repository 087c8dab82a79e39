#!/usr/bin/env bash
# Checks the .deb packages `make deb` built (paths in target/debian/built.txt, or given as
# arguments): control fields (dpkg-deb -I), the file list (dpkg-deb -c), the maintainer
# scripts, and then, unpacked together into a throwaway root with dpkg -x: the binaries run,
# the man pages and completions are well formed, the packaged example configs pass the packaged
# binaries' checks, and `systemd-analyze verify --root` accepts the units with nothing to say.
# Prints every failure and exits 1 if there was any.
set -euo pipefail

cd "$(dirname "$0")/.."
debs=("$@")
if [ ${#debs[@]} -eq 0 ]; then
    mapfile -t debs < target/debian/built.txt
fi

work=$(mktemp -d /tmp/lvs-deb-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"
failures=0

fail() {
    echo "deb-check: FAIL: $*" >&2
    failures=$((failures + 1))
}

# check_files DEB PATH... : every PATH (relative, no leading ./) is in the package.
check_files() {
    local deb=$1 list
    shift
    list=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./||')
    for p in "$@"; do
        grep -qxF "$p" <<<"$list" || fail "$(basename "$deb"): no $p"
    done
}

# check_field DEB FIELD REGEX
check_field() {
    local v
    v=$(dpkg-deb -f "$1" "$2" || true)
    [[ $v =~ $3 ]] || fail "$(basename "$1"): $2 is '$v', expected /$3/"
}

# check_scripts DEB USER : postinst creates USER, the systemd snippets were merged in.
check_scripts() {
    local deb=$1 user=$2 ctl="$work/ctl-$(basename "$1")"
    dpkg-deb -e "$deb" "$ctl"
    for s in postinst postrm prerm; do
        [ -x "$ctl/$s" ] || { fail "$(basename "$deb"): no executable $s"; continue; }
        sh -n "$ctl/$s" || fail "$(basename "$deb"): $s: syntax error"
        ! grep -q '#DEBHELPER#' "$ctl/$s" || fail "$(basename "$deb"): $s: #DEBHELPER# left in"
    done
    # (continuation lines joined first)
    sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' "$ctl/postinst" | grep -qE "adduser --system .* $user\$" ||
        fail "$(basename "$deb"): postinst does not create $user"
    grep -q 'deb-systemd-helper' "$ctl/postinst" || fail "$(basename "$deb"): postinst has no unit handling"
    grep -q 'deb-systemd-invoke stop' "$ctl/prerm" || fail "$(basename "$deb"): prerm does not stop the units"
    grep -q 'rm -rf /var/lib/' "$ctl/postrm" || fail "$(basename "$deb"): postrm purge keeps the state"
}

man1=usr/share/man/man1
bashc=usr/share/bash-completion/completions
zshc=usr/share/zsh/vendor-completions
fishc=usr/share/fish/vendor_completions.d
units=usr/lib/systemd/system
seen=()

for deb in "${debs[@]}"; do
    [ -f "$deb" ] || { fail "$deb: missing (run make deb)"; continue; }
    pkg=$(dpkg-deb -f "$deb" Package)
    seen+=("$pkg")
    echo "deb-check: $pkg: $deb ($(du -h "$deb" | cut -f1))"
    check_field "$deb" Version '^[0-9]+\.[0-9]+\.[0-9]+(-[0-9]+)?$'
    check_field "$deb" Architecture '^[a-z0-9]+$'
    check_field "$deb" Maintainer '.+<.+@.+>'
    check_field "$deb" Section '^net$'
    check_field "$deb" Priority '^optional$'
    check_field "$deb" Depends 'libc6'
    check_field "$deb" Description '.{20,}'
    case "$pkg" in
    lvs-director)
        check_field "$deb" Depends 'adduser'
        check_files "$deb" usr/bin/director "$units/lvs-director.service" \
            "$man1/director.1.gz" "$bashc/director" "$zshc/_director" "$fishc/director.fish" \
            usr/share/doc/lvs-director/examples/director-{1,2,3}.toml \
            usr/share/doc/lvs-director/examples/services.toml usr/share/doc/lvs-director/copyright
        check_scripts "$deb" lvs
        ;;
    realserver-agent)
        check_field "$deb" Depends 'adduser'
        check_files "$deb" usr/bin/realserver-agent "$units/realserver-agent.service" \
            "$units/realserver-agent-setup.service" "$man1/realserver-agent.1.gz" \
            "$man1/realserver-agent-run.1.gz" "$man1/realserver-agent-setup.1.gz" \
            "$man1/realserver-agent-teardown.1.gz" "$bashc/realserver-agent" \
            "$zshc/_realserver-agent" "$fishc/realserver-agent.fish" \
            usr/share/doc/realserver-agent/examples/agent.toml
        check_scripts "$deb" lvs-agent
        # The setup unit must survive upgrades (stopping it removes the VIPs from lo).
        ctl="$work/ctl-$(basename "$deb")"
        if grep -q 'try-restart.*realserver-agent-setup' "$ctl/postinst"; then
            fail "$pkg: postinst restarts realserver-agent-setup.service on upgrade"
        fi
        ;;
    lvsctl)
        check_files "$deb" usr/bin/lvsctl "$man1/lvsctl.1.gz" "$man1/lvsctl-service.1.gz" \
            "$man1/lvsctl-service-add.1.gz" "$man1/lvsctl-apply.1.gz" "$bashc/lvsctl" \
            "$zshc/_lvsctl" "$fishc/lvsctl.fish" usr/share/doc/lvsctl/examples/services.toml
        ;;
    *) fail "$deb: unexpected package $pkg" ;;
    esac
    dpkg-deb -x "$deb" "$root"
done

for want in lvs-director realserver-agent lvsctl; do
    [[ " ${seen[*]} " == *" $want "* ]] || fail "no $want package checked"
done

# The unpacked root: binaries run, docs are well formed.
for b in director realserver-agent lvsctl; do
    out=$("$root/usr/bin/$b" --version 2>&1) || fail "$b --version: $out"
    [[ $out == "$b "* ]] || fail "$b --version says '$out'"
done
for page in "$root/$man1"/*.1.gz; do
    zcat "$page" | grep -q '^\.TH ' || fail "$page: not a man page"
done
for c in "$root/$bashc"/*; do
    bash -n "$c" || fail "$c: bash syntax"
done

# The packaged examples pass the packaged binaries' checks, with certificates from the packaged
# lvsctl in place of /etc/lvs/pki.
pki="$work/pki"
"$root/usr/bin/lvsctl" pki init --dir "$pki" >/dev/null
for n in 1 2 3; do
    "$root/usr/bin/lvsctl" pki issue director "director-$n" --ip "10.0.0.$n" --dir "$pki" >/dev/null
done
"$root/usr/bin/lvsctl" pki issue agent web-1 --ip 10.0.0.11 --ip 2001:db8:10::11 --dir "$pki" >/dev/null
for n in 1 2 3; do
    cfg="$work/director-$n.toml"
    sed "s|\"/etc/lvs/pki/|\"$pki/|" "$root/usr/share/doc/lvs-director/examples/director-$n.toml" >"$cfg"
    "$root/usr/bin/director" --check -c "$cfg" >/dev/null || fail "director-$n.toml: director --check"
done
cfg="$work/agent.toml"
sed "s|\"/etc/lvs/pki/|\"$pki/|" "$root/usr/share/doc/realserver-agent/examples/agent.toml" >"$cfg"
"$root/usr/bin/realserver-agent" run --check --config "$cfg" >/dev/null || fail "agent.toml: realserver-agent run --check"

# systemd-analyze verify resolves ExecStart= paths and the units' dependencies under --root, and
# man: references through MANPATH: give it the host's own units next to ours. It reports
# problems (unknown keys, bad values, missing binaries or pages) as output, so any output fails.
mkdir -p "$root/$units"
for d in /usr/lib/systemd/system /lib/systemd/system; do
    [ -d "$d" ] && cp -rn "$d/." "$root/$units/" 2>/dev/null || true
done
verify=$(cd "$root/$units" && MANPATH="$root/usr/share/man" \
    systemd-analyze verify --root="$root" lvs-director.service realserver-agent.service \
    realserver-agent-setup.service 2>&1) || fail "systemd-analyze verify failed"
if [ -n "$verify" ]; then
    fail "systemd-analyze verify:"
    echo "$verify" >&2
fi

if [ "$failures" -gt 0 ]; then
    echo "deb-check: $failures failure(s)" >&2
    exit 1
fi
echo "deb-check: ok (${seen[*]}; units verified with $(systemd-analyze --version | head -n1))"
