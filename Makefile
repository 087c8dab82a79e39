# The front door: `make demo` runs the demo, `make test` the whole suite (what CI runs).
# Benchmarks are `make bench-NAME` and end with one `RESULT key=value ...` line.

CARGO ?= cargo
SHELL := /bin/bash
export CARGO_TERM_COLOR ?= never

.PHONY: all deps build release demo test unit lint fmt bench-commit bench-failover bench-reconcile bench-fanin bench-sim clean deb deb-check

all: build

# System tools the netns tests drive (CI runs as root on a fresh machine).
deps:
	@if ! command -v ip >/dev/null || ! command -v nft >/dev/null; then \
	  echo "installing iproute2 and nftables"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables; \
	fi
	@# systemd-analyze checks the unit files (tests/tests/packaging/systemd_units.rs, deb-check).
	@if ! command -v systemd-analyze >/dev/null; then \
	  echo "installing systemd (for systemd-analyze)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd; \
	fi

build:
	$(CARGO) build --workspace --bins

# Examples too: the lab runs director/examples/ipvs_selftest against a real kernel.
release:
	$(CARGO) build --workspace --release --bins --examples

# A three-director cluster on loopback driven by lvsctl with a failover; then, in network
# namespaces (root), a VIP that moves to the new leader when the old one is killed; then kernel
# IPVS in the lab VM: services, traffic through the VIP, a leader kill that keeps connections.
demo: deps build release
	bash deploy/demo.sh target/debug

# Everything: unit tests, cluster tests with real director processes, lints, the packages.
# The last line totals every test binary's result as `N passed, N failed`.
# The lab tests (tests/lab) boot a VM with the release binaries, so those are built first.
test: deps build release lint deb-check
	@mkdir -p target
	@set -o pipefail; $(CARGO) test --workspace --no-fail-fast 2>&1 | tee target/test.log; rc=$$?; \
	  awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' target/test.log; \
	  exit $$rc

# Debian packages lvs-director, realserver-agent and lvsctl (cargo-deb, installed on first use)
# from the release binaries: units, man pages and completions (which the binaries write
# themselves: `BIN __generate-docs DIR`; man pages gzipped here, as Debian wants them), example
# configs. Debug info goes to -dbgsym .ddebs. --fast compresses in seconds instead of minutes
# (packages about 20% larger); `make deb DEB_FLAGS=--dbgsym` for the smallest.
# The paths are listed in target/debian/built.txt.
DEB_CRATES := director realserver-agent lvsctl
DEB_DOCS := target/release/docs
DEB_FLAGS ?= --dbgsym --fast
deb: release
	@$(CARGO) deb --version >/dev/null 2>&1 || $(CARGO) install cargo-deb --locked
	@rm -rf $(DEB_DOCS) && mkdir -p target/debian
	@for b in $(DEB_CRATES); do \
	  ./target/release/$$b __generate-docs $(DEB_DOCS)/$$b >/dev/null || exit 1; \
	done
	@gzip -9n $(DEB_DOCS)/*/man/*.1
	@set -o pipefail; : > target/debian/built.txt; for c in $(DEB_CRATES); do \
	  $(CARGO) deb -p $$c --no-build $(DEB_FLAGS) | grep '\.deb$$' >> target/debian/built.txt || exit 1; \
	done
	@echo "packages (target/debian/built.txt):"; sed 's/^/  /' target/debian/built.txt

# Inspects the packages: control fields, file lists, maintainer scripts, and in a dpkg -x root
# the binaries, docs, example configs and `systemd-analyze verify` of the units.
deb-check: deps deb
	bash deploy/deb-check.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Commit latency and throughput of a three-node cluster with fsync, 1 and 16 writers.
bench-commit: release
	./target/release/bench-commit

# VIP failover in network namespaces (root): 20 leader kills and 5 leader partitions per timing
# profile (default, then fast); BENCH_KILLS / BENCH_PARTITIONS change the counts.
bench-failover: release deps
	./target/release/bench-failover

# 5,000 simulated agents (one report per second each, one process) against a single director on
# loopback: the leader's CPU and the p99 time from a report to its weight decision.
bench-fanin: release
	./target/release/bench-fanin

# The scheduling simulator's degraded-server scenario (a server's capacity halves mid-run) over
# BENCH_SEEDS seeds: the load-informed policy's p99 against the JSQ oracle and static wlc.
bench-sim: release
	./target/release/bench-sim

clean:
	$(CARGO) clean
	rm -rf /tmp/lvs-demo

# The real-kernel VM lab (tests/lab, README there): a cached Debian kernel with IPVS booted under
# qemu, since the host kernel may have no IPVS. lab-prepare installs the packages and builds the
# cache (/var/cache/lvs-lab, or LVS_LAB_CACHE); lab-smoke boots it with the release binaries.
# `make lab` runs every IPVS scenario in one boot, `make lab S="failover stateless"` some of them.
.PHONY: lab-prepare lab-smoke lab

lab-prepare:
	bash tests/lab/prepare.sh

lab-smoke: release
	bash tests/lab/run.sh --file tests/lab/smoke.sh -- smoke.sh

S ?= all
lab: release
	bash tests/lab/run.sh -- lab-scenario $(S)

# In the lab: 10,000 services x 4 real servers programmed by the director's reconciler vs
# `ipvsadm -R`, then one weight change (BENCH_SERVICES changes the count).
BENCH_SERVICES ?= 10000
bench-reconcile: release
	@mkdir -p target/lab
	@set -o pipefail; bash tests/lab/run.sh --log target/lab/bench-reconcile.log -- \
	  lab-scenario bench-reconcile $(BENCH_SERVICES) && grep '^RESULT ' target/lab/bench-reconcile.log | tail -n1

# The cargo-fuzz targets (fuzz/, its own workspace; README there) compile on stable; running them
# is `cargo +nightly fuzz run TARGET`. The property tests of `make test` cover the same parsers.
.PHONY: fuzz-check

fuzz-check:
	$(CARGO) check --manifest-path fuzz/Cargo.toml --bins
