//! Network-namespace topologies for tests that need real L2 behaviour (VIP failover, ARP, the IPVS
//! lab): a "switch" namespace holding a Linux bridge, and hosts (one namespace each) plugged into it
//! through veth pairs. Nothing is created in the root namespace except the namespace names under
//! `/var/run/netns` and a marker file under `/run/lvs-netns`.
//!
//! Address plan of a topology with tag `TTTT` (4 hex digits) and subnet id `k` (1..=254, derived
//! from the tag), for the host added `n`-th (n = 1, 2, ...):
//!
//! * namespaces `lvs-TTTT-sw` (the switch, bridge `br0`, IPv6 disabled) and `lvs-TTTT-<name>`;
//! * host interface `eth0`, MAC `02:00:TT:TT:00:nn`, `198.18.k.n/24`, `fd00:k::n/64` (hex k, n);
//! * its switch-side veth end is `p<n>` in the switch namespace, enslaved to `br0`.
//!
//! The marker `/run/lvs-netns/TTTT` holds `"<pid> <starttime>"` of the creating process (start time
//! from `/proc/<pid>/stat`, so a recycled pid does not count as the owner). `Topology::new` calls
//! `Topology::cleanup_stale`, which deletes `lvs-TTTT-*` namespaces whose owner is gone.
//!
//! Things to know:
//! * Rust code runs inside a namespace through [`in_netns`] (a fresh OS thread that `setns`es).
//!   Sockets opened there stay in that namespace and may then be used from any thread.
//! * `/proc/self/net/*` (and so `/proc/net/*`) shows the namespace of the *main* thread; inside
//!   `in_netns` use `/proc/thread-self/net/*`. `/proc/sys/net/*` does follow the calling thread.
//! * Drop kills every process whose network namespace is one of the topology's (`ip netns pids`),
//!   however it was started, then deletes the namespaces.

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::vip::frames::{self, Mac, ARP_REPLY};

/// Where `ip netns` keeps its namespace files.
pub const NETNS_DIR: &str = "/var/run/netns";
/// Owner markers of live topologies, one file per tag.
pub const MARKER_DIR: &str = "/run/lvs-netns";
/// Prefix of every namespace this module creates.
pub const NS_PREFIX: &str = "lvs-";
/// Bridge in the switch namespace.
pub const BRIDGE: &str = "br0";
/// Interface of every host.
pub const HOST_IF: &str = "eth0";
/// nftables table `Host::block_tcp_ports` installs (family inet).
pub const NFT_TABLE: &str = "lvs_partition";
/// ARP probe period of `ArpObserver::start`.
pub const DEFAULT_ARP_PERIOD: Duration = Duration::from_millis(5);
const INSTALL_HINT: &str = "apt-get install iproute2 nftables";

// ---------------------------------------------------------------------------------------------
// Prerequisites and command helpers

/// Panics (never skips) when the tests cannot build topologies here: not root, or `ip` / `nft`
/// missing. Checked once per process.
pub fn check_prerequisites() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let mut missing = Vec::new();
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            missing.push(
                "root (network namespaces, veth, bridges, nftables and raw sockets need \
                 CAP_SYS_ADMIN/CAP_NET_ADMIN/CAP_NET_RAW): run the tests as root"
                    .to_string(),
            );
        }
        if !tool_runs("ip", &["-V"]) {
            missing.push("`ip` from iproute2 (apt-get install iproute2)".into());
        }
        if !tool_runs("nft", &["--version"]) {
            missing.push("`nft` from nftables (apt-get install nftables)".into());
        }
        if !missing.is_empty() {
            panic!(
                "netns topology tests cannot run, missing: {}. Install the tools with `{INSTALL_HINT}` \
                 and run as root.",
                missing.join("; ")
            );
        }
    });
}

fn tool_runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Panics with the package to install when `nft` is missing.
fn require_nft() {
    if !tool_runs("nft", &["--version"]) {
        panic!("`nft` not found: install the `nftables` package (apt-get install nftables)");
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, feeding it `input`; stdout on success, an error carrying the command,
/// exit status and stderr otherwise.
fn run_cmd(cmd: &mut Command, input: Option<&str>) -> Result<String> {
    let what = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning `{what}`"))?;
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .with_context(|| format!("writing stdin of `{what}`"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("waiting for `{what}`"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "`{what}` failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            if stdout.trim().is_empty() {
                String::new()
            } else {
                format!(" (stdout: {})", stdout.trim())
            }
        );
    }
    Ok(stdout)
}

fn ip(args: &[&str]) -> Result<String> {
    run_cmd(Command::new("ip").args(args), None)
}

/// `ip -n NS -batch -` with one command per line (one process for many changes).
fn ip_batch(ns: &str, lines: &[String]) -> Result<()> {
    let mut script = lines.join("\n");
    script.push('\n');
    run_cmd(
        Command::new("ip").args(["-n", ns, "-batch", "-"]),
        Some(&script),
    )
    .map(|_| ())
}

/// Serialises `ip netns add` within this process: the first one mounts `/var/run/netns`, and
/// concurrent first mounts stack on top of each other.
static NETNS_ADD: Mutex<()> = Mutex::new(());

fn netns_add(ns: &str) -> Result<()> {
    let _g = NETNS_ADD.lock().unwrap_or_else(|e| e.into_inner());
    ip(&["netns", "add", ns]).map(|_| ())
}

fn netns_path(ns: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(ns)
}

/// SIGKILLs every process whose network namespace is `ns` (never this process).
fn kill_netns_processes(ns: &str) {
    let Ok(out) = ip(&["netns", "pids", ns]) else {
        return;
    };
    let me = std::process::id() as i32;
    for pid in out.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
        if pid > 1 && pid != me {
            // SAFETY: kill(2) on a pid that `ip netns pids` just reported inside our namespace.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn netns_del(ns: &str) {
    kill_netns_processes(ns);
    if let Err(e) = ip(&["netns", "del", ns]) {
        if netns_path(ns).exists() {
            eprintln!("netns: could not delete namespace {ns}: {e:#}");
        }
    }
}

fn if_index(ifname: &str) -> Result<u32> {
    let c = CString::new(ifname).context("interface name contains NUL")?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("no interface {ifname}"));
    }
    Ok(idx)
}

/// Writes per-namespace sysctls (`net.*` only: everything else is global) of the namespace the
/// calling thread is in; call it inside `in_netns`.
fn write_sysctls(pairs: &[(&str, &str)]) -> Result<()> {
    for (key, value) in pairs {
        if !key.starts_with("net.") {
            bail!("refusing to set {key}: only net.* sysctls are per network namespace");
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Running Rust code inside a namespace

fn open_netns(ns: &str) -> Result<File> {
    let path = netns_path(ns);
    File::open(&path).with_context(|| format!("opening {}", path.display()))
}

/// Moves the calling thread into the network namespace `file` refers to, and checks it arrived.
fn enter_netns(file: &File) -> Result<()> {
    // SAFETY: setns(2) on a descriptor we own; it changes only this thread's network namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error()).context("setns(CLONE_NEWNET)");
    }
    let want = file.metadata()?.ino();
    let got = fs::metadata("/proc/thread-self/ns/net")?.ino();
    if want != got {
        bail!("setns returned but this thread is in net namespace {got}, not {want}");
    }
    Ok(())
}

/// Runs `f` on a new OS thread inside network namespace `ns` (a name under `/var/run/netns`) and
/// returns its result. A panic in `f` is propagated.
pub fn in_netns<T, F>(ns: &str, f: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let file = open_netns(ns)?;
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name(format!("netns-{ns}"))
            .spawn_scoped(s, move || -> Result<T> {
                enter_netns(&file).with_context(|| format!("entering namespace {ns}"))?;
                drop(file);
                Ok(f())
            })
            .context("spawning a thread")?;
        match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Like `in_netns` but does not wait: the thread keeps running in `ns` until `f` returns.
pub fn spawn_in_netns<T, F>(ns: &str, f: F) -> Result<JoinHandle<Result<T>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file = open_netns(ns)?;
    let name = ns.to_string();
    std::thread::Builder::new()
        .name(format!("netns-{ns}"))
        .spawn(move || -> Result<T> {
            enter_netns(&file).with_context(|| format!("entering namespace {name}"))?;
            drop(file);
            Ok(f())
        })
        .context("spawning a thread")
}

// ---------------------------------------------------------------------------------------------
// Owner markers and stale cleanup

/// Start time (clock ticks since boot, field 22 of `/proc/PID/stat`) of a live process.
fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); field 22 is the 20th from here.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn marker_path(tag: &str) -> PathBuf {
    Path::new(MARKER_DIR).join(tag)
}

/// Whether the process that created topology `tag` is still running. Unknown is "alive".
fn owner_alive(tag: &str) -> bool {
    match fs::read_to_string(marker_path(tag)) {
        Ok(text) => {
            let mut it = text.split_whitespace();
            let (Some(pid), Some(start)) = (
                it.next().and_then(|p| p.parse::<u32>().ok()),
                it.next().and_then(|s| s.parse::<u64>().ok()),
            ) else {
                return true; // not ours to judge
            };
            process_start_time(pid) == Some(start)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => true,
    }
}

/// The tag of a namespace name this module made (`lvs-TTTT-...`).
fn tag_of(ns: &str) -> Option<&str> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    let (tag, name) = rest.split_once('-')?;
    (tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty())
        .then_some(tag)
}

static TAG_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Picks an unused tag and atomically creates its marker (written to a temporary file, then
/// hard-linked into place, which fails if the tag is taken).
fn reserve_tag() -> Result<(u16, PathBuf)> {
    fs::create_dir_all(MARKER_DIR).with_context(|| format!("creating {MARKER_DIR}"))?;
    let pid = std::process::id();
    let start = process_start_time(pid).context("reading own start time")?;
    for _ in 0..1000 {
        let count = TAG_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Cheap mixing of pid, counter and time; uniqueness comes from the reservation below.
        let mut x = (pid as u64) << 32 ^ (count as u64) << 16 ^ nanos as u64;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let tag = (x & 0xffff) as u16;
        let tag_s = format!("{tag:04x}");
        if fs::read_dir(NETNS_DIR)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .any(|e| tag_of(&e.file_name().to_string_lossy()) == Some(tag_s.as_str()))
            })
            .unwrap_or(false)
        {
            continue;
        }
        let tmp = Path::new(MARKER_DIR).join(format!(".tmp-{pid}-{count}"));
        fs::write(&tmp, format!("{pid} {start}\n"))
            .with_context(|| format!("writing {}", tmp.display()))?;
        let marker = marker_path(&tag_s);
        let linked = fs::hard_link(&tmp, &marker);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok((tag, marker)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", marker.display())),
        }
    }
    bail!("no free topology tag after 1000 tries (stale markers in {MARKER_DIR}?)")
}

// ---------------------------------------------------------------------------------------------
// Topology

/// A switch namespace with a bridge, and hosts attached to it. Dropping it kills the processes in
/// its namespaces and deletes them (also while a test panics).
pub struct Topology {
    tag: String,
    tag_num: u16,
    subnet: u8,
    switch_ns: String,
    /// Every namespace we (tried to) create, in creation order.
    namespaces: Vec<String>,
    hosts: Vec<Host>,
    marker: PathBuf,
}

impl Topology {
    /// Checks prerequisites, removes stale topologies, and creates the switch namespace.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Topology {
        check_prerequisites();
        Topology::cleanup_stale();
        let (tag_num, marker) = reserve_tag().unwrap_or_else(|e| panic!("netns: {e:#}"));
        let tag = format!("{tag_num:04x}");
        let switch_ns = format!("{NS_PREFIX}{tag}-sw");
        let mut t = Topology {
            subnet: (tag_num % 254) as u8 + 1,
            tag,
            tag_num,
            switch_ns: switch_ns.clone(),
            namespaces: Vec::new(),
            hosts: Vec::new(),
            marker,
        };
        if let Err(e) = t.create_switch() {
            panic!("netns: creating switch namespace {switch_ns}: {e:#}");
        }
        t
    }

    fn create_switch(&mut self) -> Result<()> {
        let ns = self.switch_ns.clone();
        self.namespaces.push(ns.clone());
        netns_add(&ns)?;
        // No IPv6 on the switch: the bridge would otherwise send its own RS/MLD frames.
        in_netns(&ns, || {
            write_sysctls(&[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ])
        })??;
        ip_batch(
            &ns,
            &[
                "link set lo up".into(),
                format!(
                    "link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
                ),
                format!("link set {BRIDGE} up"),
            ],
        )
    }

    /// The 4-hex-digit tag in every namespace name of this topology.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// `k` of the address plan: hosts get 198.18.k.n/24 and fd00:k::n/64.
    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    pub fn switch_ns(&self) -> &str {
        &self.switch_ns
    }

    /// Names of all namespaces of this topology (switch first).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Namespace name of host `name`.
    pub fn ns_name(&self, name: &str) -> String {
        format!("{NS_PREFIX}{}-{name}", self.tag)
    }

    /// MAC of the `n`-th host (1-based): 02:00:TT:TT:00:nn.
    pub fn mac_for(&self, n: u8) -> Mac {
        let [hi, lo] = self.tag_num.to_be_bytes();
        [0x02, 0x00, hi, lo, 0x00, n]
    }

    /// 198.18.k.n: the `n`-th host's address, or any other address of the segment (e.g. a VIP).
    pub fn ipv4_for(&self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, n)
    }

    /// fd00:k::n.
    pub fn ipv6_for(&self, n: u8) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, self.subnet as u16, 0, 0, 0, 0, 0, n as u16)
    }

    /// Adds a host namespace `lvs-TAG-NAME` plugged into the switch. `name`: 1-16 characters of
    /// `[a-z0-9]`, unique in the topology, not "sw". Panics on failure (the topology is cleaned up).
    pub fn add_host(&mut self, name: &str) -> Host {
        let valid = !name.is_empty()
            && name.len() <= 16
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && name != "sw";
        assert!(
            valid,
            "netns: host name {name:?} must be 1-16 characters of [a-z0-9], not \"sw\""
        );
        assert!(
            self.host(name).is_none(),
            "netns: host {name} already exists"
        );
        assert!(self.hosts.len() < 250, "netns: at most 250 hosts");
        let n = self.hosts.len() as u8 + 1;
        match self.create_host(name, n) {
            Ok(h) => {
                self.hosts.push(h.clone());
                h
            }
            Err(e) => panic!("netns: adding host {name}: {e:#}"),
        }
    }

    fn create_host(&mut self, name: &str, n: u8) -> Result<Host> {
        let ns = self.ns_name(name);
        let port = format!("p{n}");
        let mac = self.mac_for(n);
        let (ipv4, ipv6) = (self.ipv4_for(n), self.ipv6_for(n));
        self.namespaces.push(ns.clone());
        netns_add(&ns)?;
        // DAD off before eth0 exists (it inherits `default`), so addresses are usable at once;
        // ping sockets allowed for root so `Host::ping` needs neither raw sockets nor `ping`.
        in_netns(&ns, || {
            write_sysctls(&[
                ("net.ipv6.conf.all.accept_dad", "0"),
                ("net.ipv6.conf.default.accept_dad", "0"),
                ("net.ipv4.ping_group_range", "0 2147483647"),
            ])
        })??;
        let mac_s = frames::fmt_mac(&mac);
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            HOST_IF,
            "address",
            &mac_s,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.switch_ns,
        ])?;
        let ifindex = in_netns(&ns, || -> Result<u32> {
            write_sysctls(&[(&format!("net.ipv6.conf.{HOST_IF}.accept_dad"), "0")])?;
            if_index(HOST_IF)
        })??;
        ip_batch(
            &ns,
            &[
                "link set lo up".into(),
                format!("link set {HOST_IF} up"),
                format!("addr add {ipv4}/24 dev {HOST_IF}"),
                format!("addr add {ipv6}/64 dev {HOST_IF} nodad"),
            ],
        )?;
        ip_batch(
            &self.switch_ns,
            &[
                format!("link set {port} master {BRIDGE}"),
                format!("link set {port} up"),
            ],
        )?;
        Ok(Host {
            name: name.to_string(),
            index: n,
            ns,
            ifname: HOST_IF.to_string(),
            mac,
            ipv4,
            ipv6,
            ifindex,
            switch_ns: self.switch_ns.clone(),
            switch_port: port,
        })
    }

    /// Deletes leftover `lvs-TTTT-*` namespaces (killing their processes) and markers whose
    /// creating process is gone. Namespaces of live processes, including this one, are kept.
    pub fn cleanup_stale() {
        let names: Vec<String> = fs::read_dir(NETNS_DIR)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for ns in &names {
            if let Some(tag) = tag_of(ns) {
                if !owner_alive(tag) {
                    eprintln!("netns: deleting stale namespace {ns}");
                    netns_del(ns);
                }
            }
        }
        if let Ok(rd) = fs::read_dir(MARKER_DIR) {
            for e in rd.filter_map(|e| e.ok()) {
                let file = e.file_name().to_string_lossy().into_owned();
                if file.len() == 4 && !owner_alive(&file) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            kill_netns_processes(ns);
        }
        for ns in self.namespaces.iter().rev() {
            netns_del(ns);
        }
        let _ = fs::remove_file(&self.marker);
    }
}

// ---------------------------------------------------------------------------------------------
// Host

/// One host of a topology (plain data; cheap to clone, valid while the topology lives).
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// `n` of the address plan (1-based, in order of `add_host`).
    pub index: u8,
    pub ns: String,
    /// Always "eth0".
    pub ifname: String,
    pub mac: Mac,
    pub ipv4: Ipv4Addr,
    pub ipv6: Ipv6Addr,
    /// Index of eth0 inside the host's namespace.
    pub ifindex: u32,
    pub switch_ns: String,
    /// The switch-side veth end (`p<n>` in the switch namespace).
    pub switch_port: String,
}

impl Host {
    /// `mac` as aa:bb:cc:dd:ee:ff.
    pub fn mac_str(&self) -> String {
        frames::fmt_mac(&self.mac)
    }

    /// `ip netns exec NS program`: add arguments, then run or spawn it.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Runs `args[0] args[1..]` in the host; stdout, or an error carrying stderr.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let (program, rest) = args.split_first().context("run: empty command")?;
        run_cmd(self.cmd(program).args(rest), None)
    }

    /// Like `run`, with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        let (program, rest) = args.split_first().context("run: empty command")?;
        run_cmd(self.cmd(program).args(rest), Some(input))
    }

    /// Starts `args[0] args[1..]` in the host (stdin null, output inherited). The topology kills it
    /// on drop, like every process in its namespaces. Panics if it cannot be spawned.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let (program, rest) = args.split_first().expect("spawn: empty command");
        let mut c = self.cmd(program);
        c.args(rest).stdin(Stdio::null());
        c.spawn()
            .unwrap_or_else(|e| panic!("spawning `{}`: {e}", describe(&c)))
    }

    /// Runs `f` on a thread inside this host's namespace (see [`in_netns`]).
    pub fn in_ns<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> Result<T> {
        in_netns(&self.ns, f)
    }

    /// A packet socket on eth0, opened inside the namespace (usable from any thread afterwards).
    pub fn packet_socket(&self) -> Result<PacketSocket> {
        let ifname = self.ifname.clone();
        in_netns(&self.ns, move || PacketSocket::open(&ifname))?
    }

    /// Sets a per-namespace sysctl, e.g. `net.ipv4.conf.all.arp_ignore` (only `net.*`).
    pub fn set_sysctl(&self, key: &str, value: &str) -> Result<()> {
        in_netns(&self.ns, || write_sysctls(&[(key, value)]))?
    }

    /// The link-layer address of `ip` in this host's neighbour table, if it has one.
    pub fn neigh(&self, ip: impl Into<IpAddr>) -> Option<String> {
        let ip = ip.into().to_string();
        let out = ip_json(&[
            "-n",
            &self.ns,
            "-j",
            "neigh",
            "show",
            &ip,
            "dev",
            &self.ifname,
        ])
        .ok()?;
        out.as_array()?
            .iter()
            .find_map(|e| e.get("lladdr")?.as_str().map(str::to_string))
    }

    /// Addresses on eth0 with their prefix lengths.
    pub fn addrs(&self) -> Result<Vec<(IpAddr, u8)>> {
        let v = ip_json(&["-n", &self.ns, "-j", "addr", "show", "dev", &self.ifname])?;
        let mut out = Vec::new();
        for link in v.as_array().into_iter().flatten() {
            for a in link
                .get("addr_info")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
            {
                let (Some(local), Some(plen)) = (
                    a.get("local").and_then(|l| l.as_str()),
                    a.get("prefixlen").and_then(|p| p.as_u64()),
                ) else {
                    continue;
                };
                if let Ok(addr) = local.parse::<IpAddr>() {
                    out.push((addr, plen as u8));
                }
            }
        }
        Ok(out)
    }

    /// Whether eth0 has address `ip`.
    pub fn has_addr(&self, ip: impl Into<IpAddr>) -> bool {
        let ip = ip.into();
        self.addrs()
            .map(|a| a.iter().any(|(x, _)| *x == ip))
            .unwrap_or(false)
    }

    /// Adds `addr` ("198.18.1.200/32", or without prefix meaning /32 resp. /128) to eth0; IPv6
    /// addresses get `nodad`.
    pub fn add_addr(&self, addr: &str) -> Result<()> {
        let (addr_ip, plen) = match addr.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>()?, p.parse::<u8>()?),
            None => {
                let a = addr.parse::<IpAddr>()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let cidr = format!("{addr_ip}/{plen}");
        let mut args = vec!["-n", &self.ns, "addr", "add", &cidr, "dev", &self.ifname];
        if addr_ip.is_ipv6() {
            args.push("nodad");
        }
        ip(&args).map(|_| ())
    }

    /// Removes address `ip` from eth0, whatever its prefix length.
    pub fn del_addr(&self, ip: impl Into<IpAddr>) -> Result<()> {
        let ip = ip.into();
        let (_, plen) = self
            .addrs()?
            .into_iter()
            .find(|(a, _)| *a == ip)
            .ok_or_else(|| anyhow!("{} has no address {ip}", self.name))?;
        ip_cmd_del(&self.ns, &format!("{ip}/{plen}"), &self.ifname)
    }

    /// Whether `ip` answers an ICMP echo from this host within 2 s.
    pub fn ping(&self, ip: impl Into<IpAddr>) -> bool {
        self.ping_timeout(ip, Duration::from_secs(2))
    }

    /// Whether `ip` answers an ICMP echo within `timeout` (a request every 100 ms).
    pub fn ping_timeout(&self, ip: impl Into<IpAddr>, timeout: Duration) -> bool {
        let ip = ip.into();
        match in_netns(&self.ns, || icmp_echo(ip, timeout)) {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) | Err(e) => panic!("ping {ip} from {}: {e:#}", self.name),
        }
    }

    /// Installs (or replaces) an nftables table in this host that drops TCP to and from `ports`
    /// on eth0, in both directions; ARP, ICMP and other ports are untouched. Panics naming the
    /// `nftables` package when `nft` is missing.
    pub fn block_tcp_ports(&self, ports: &[u16]) -> Result<()> {
        require_nft();
        if ports.is_empty() {
            bail!("block_tcp_ports: no ports");
        }
        let set = ports
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let (t, i) = (NFT_TABLE, &self.ifname);
        // Declaring then deleting the table makes the script replace any earlier one atomically.
        let script = format!(
            "table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \x20 chain input {{\n\
             \x20   type filter hook input priority -10; policy accept;\n\
             \x20   iifname \"{i}\" tcp dport {{ {set} }} drop\n\
             \x20   iifname \"{i}\" tcp sport {{ {set} }} drop\n\
             \x20 }}\n\
             \x20 chain output {{\n\
             \x20   type filter hook output priority -10; policy accept;\n\
             \x20   oifname \"{i}\" tcp dport {{ {set} }} drop\n\
             \x20   oifname \"{i}\" tcp sport {{ {set} }} drop\n\
             \x20 }}\n\
             }}\n"
        );
        self.run_with_input(&["nft", "-f", "-"], &script)
            .map(|_| ())
    }

    /// Removes the table `block_tcp_ports` installed (no-op when there is none).
    pub fn unblock(&self) -> Result<()> {
        require_nft();
        let tables = self.run(&["nft", "list", "tables"])?;
        if tables
            .lines()
            .any(|l| l.trim() == format!("table inet {NFT_TABLE}"))
        {
            self.run(&["nft", "delete", "table", "inet", NFT_TABLE])?;
        }
        Ok(())
    }

    /// Sets the switch side of this host's cable up or down (eth0 loses carrier when down).
    pub fn set_switch_port(&self, up: bool) -> Result<()> {
        ip(&[
            "-n",
            &self.switch_ns,
            "link",
            "set",
            &self.switch_port,
            if up { "up" } else { "down" },
        ])
        .map(|_| ())
    }
}

fn ip_cmd_del(ns: &str, cidr: &str, dev: &str) -> Result<()> {
    ip(&["-n", ns, "addr", "del", cidr, "dev", dev]).map(|_| ())
}

fn ip_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = ip(args)?;
    if out.trim().is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_str(&out).with_context(|| format!("parsing `ip {}` output", args.join(" ")))
}

/// ICMP echo through a ping socket (SOCK_DGRAM; needs `net.ipv4.ping_group_range` to include our
/// gid, which `add_host` sets). The kernel fills in the identifier and filters replies by it.
fn icmp_echo(target: IpAddr, timeout: Duration) -> Result<bool> {
    let (domain, proto, request, reply) = match target {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP, 8u8, 0u8),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6, 128, 129),
    };
    // SAFETY: socket(2) with constant arguments; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error())
            .context("ICMP ping socket (is net.ipv4.ping_group_range set in this namespace?)");
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns. A ping socket behaves like a UDP
    // socket for send_to/recv_from (port = ICMP identifier).
    let sock = unsafe { UdpSocket::from_raw_fd(fd) };
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1500];
    for seq in 1u16.. {
        let mut msg = vec![request, 0, 0, 0, 0, 0];
        msg.extend_from_slice(&seq.to_be_bytes());
        msg.extend_from_slice(b"lvs-netns-ping");
        // Errors (unreachable, filtered) just mean no reply for this one.
        let _ = sock.send_to(&msg, SocketAddr::new(target, 0));
        let resend = (Instant::now() + Duration::from_millis(100)).min(deadline);
        loop {
            let left = resend.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if n >= 8 && from.ip() == target && buf[0] == reply => {
                    return Ok(true)
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(false)
}

// ---------------------------------------------------------------------------------------------
// Raw frames

/// An AF_PACKET/SOCK_RAW socket bound to one interface, capturing every ethertype (ETH_P_ALL) in
/// both directions. Open it inside the namespace (`in_netns` / `Host::packet_socket`); the socket
/// stays bound to that namespace's interface wherever it is used afterwards.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens the socket on `ifname` of the calling thread's namespace. Created with protocol 0
    /// (receives nothing) and only then bound to ETH_P_ALL on the interface, so no frame of
    /// another interface slips in between. Has a 1 s receive timeout (SO_RCVTIMEO) as a backstop;
    /// `recv` takes its own.
    pub fn open(ifname: &str) -> Result<PacketSocket> {
        let ifindex = if_index(ifname)?;
        // SAFETY: socket(2) with constant arguments; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("socket(AF_PACKET, SOCK_RAW)");
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is a plain C struct for which all-zero bytes are a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as i32;
        // SAFETY: `sll` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).with_context(|| format!("binding to {ifname}"));
        }
        let tv = libc::timeval {
            tv_sec: 1,
            tv_usec: 0,
        };
        // SAFETY: `tv` is a valid timeval and the length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("SO_RCVTIMEO");
        }
        Ok(PacketSocket { fd, ifindex })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Transmits one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: the pointer and length describe `frame`, which outlives the call.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("send on packet socket");
        }
        if n as usize != frame.len() {
            bail!("short send on packet socket: {n} of {} bytes", frame.len());
        }
        Ok(())
    }

    /// The next frame, with whether it was outgoing (sent by this host), waiting up to `timeout`;
    /// `Ok(None)` on timeout.
    pub fn recv_with_direction(&self, timeout: Duration) -> io::Result<Option<(Vec<u8>, bool)>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, count 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if rc == 0 {
                return Ok(None);
            }
            // SAFETY: all-zero is a valid sockaddr_ll.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: `buf` and `from` are valid for writes of the lengths passed.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr() as *mut libc::c_void,
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                    continue;
                }
                return Err(e);
            }
            let outgoing = from.sll_pkttype == libc::PACKET_OUTGOING;
            return Ok(Some((buf[..n as usize].to_vec(), outgoing)));
        }
    }

    /// The next frame in either direction within `timeout`. Panics on socket errors.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv_with_direction(timeout)
            .unwrap_or_else(|e| panic!("recv on packet socket: {e}"))
            .map(|(f, _)| f)
    }

    /// The next frame received from the wire (outgoing ones skipped) within `timeout`.
    pub fn recv_incoming(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv_matching(timeout, |_| true)
    }

    /// The first incoming frame for which `pred` holds, within `timeout` (others are dropped).
    pub fn recv_matching(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_with_direction(left) {
                Ok(Some((f, false))) if pred(&f) => return Some(f),
                Ok(Some(_)) => {}
                Ok(None) => return None,
                Err(e) => panic!("recv on packet socket: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ARP observation

/// Probes an IPv4 address with ARP requests from a client host at a fixed period and records who
/// answers: `(time since start, sender MAC)` of every ARP reply for the address.
pub struct ArpObserver {
    target: Ipv4Addr,
    period: Duration,
    start: Instant,
    stop: Arc<AtomicBool>,
    probes: Arc<AtomicU64>,
    replies: Arc<Mutex<Vec<(Duration, Mac)>>>,
    thread: Option<JoinHandle<Result<Result<()>>>>,
}

impl ArpObserver {
    /// Starts probing `target` from `client` every `DEFAULT_ARP_PERIOD` (5 ms).
    pub fn start(client: &Host, target: Ipv4Addr) -> Result<ArpObserver> {
        Self::start_with_period(client, target, DEFAULT_ARP_PERIOD)
    }

    /// Starts probing every `period`. Returns once the first probe is about to go out; the
    /// observer thread lives in the client's namespace until `stop` (or drop).
    pub fn start_with_period(
        client: &Host,
        target: Ipv4Addr,
        period: Duration,
    ) -> Result<ArpObserver> {
        assert!(!period.is_zero(), "ArpObserver period must be > 0");
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(AtomicU64::new(0));
        let replies = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Instant>>();
        let (ifname, mac, sender) = (client.ifname.clone(), client.mac, client.ipv4);
        let (t_stop, t_probes, t_replies) = (stop.clone(), probes.clone(), replies.clone());
        let thread = spawn_in_netns(&client.ns, move || -> Result<()> {
            let sock = match PacketSocket::open(&ifname) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow!("{e:#}")));
                    return Err(e);
                }
            };
            let request = frames::arp_request(&mac, sender, target);
            let start = Instant::now();
            let _ = ready_tx.send(Ok(start));
            let mut next = start;
            while !t_stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= next {
                    sock.send(&request)?;
                    t_probes.fetch_add(1, Ordering::Relaxed);
                    next += period;
                    if next <= now {
                        next = now + period; // fell behind: skip ticks rather than burst
                    }
                }
                let wait = next.saturating_duration_since(Instant::now());
                let Some((frame, outgoing)) = sock.recv_with_direction(wait)? else {
                    continue;
                };
                let at = Instant::now();
                if outgoing {
                    continue;
                }
                if let Some(arp) = frames::parse_arp(&frame) {
                    if arp.op == ARP_REPLY && arp.sender_ip == target {
                        t_replies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((at - start, arp.sender_mac));
                    }
                }
            }
            Ok(())
        })?;
        let start = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(start)) => start,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e.context("starting ArpObserver"));
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                let _ = thread.join();
                bail!("ArpObserver thread did not start within 10 s");
            }
        };
        Ok(ArpObserver {
            target,
            period,
            start,
            stop,
            probes,
            replies,
            thread: Some(thread),
        })
    }

    pub fn target(&self) -> Ipv4Addr {
        self.target
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// When the first probe was sent; reply times are relative to this.
    pub fn started_at(&self) -> Instant {
        self.start
    }

    /// Probes sent so far.
    pub fn probes(&self) -> u64 {
        self.probes.load(Ordering::Relaxed)
    }

    /// The replies recorded so far.
    pub fn replies(&self) -> Vec<(Duration, Mac)> {
        self.replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a reply from `mac` arrives after this call; false after `timeout`.
    pub fn wait_answering(&self, mac: &Mac, timeout: Duration) -> bool {
        let since = self.start.elapsed();
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .replies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|(t, m)| *t >= since && m == mac)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(self.period.min(Duration::from_millis(5)));
        }
    }

    /// Stops probing and returns every reply in arrival order. Panics if the observer failed.
    pub fn stop(mut self) -> Vec<(Duration, Mac)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) | Ok(Err(e)) => {
                    panic!("ArpObserver for {} failed: {e:#}", self.target)
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        self.replies()
    }
}

impl Drop for ArpObserver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// "`mac` was answering from `from` to `to`" (times of its first and last reply in the stretch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    pub mac: Mac,
    pub from: Duration,
    pub to: Duration,
    pub replies: usize,
}

/// Two different MACs both answering during `[from, to]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    pub a: Mac,
    pub b: Mac,
    pub from: Duration,
    pub to: Duration,
}

impl Overlap {
    pub fn duration(&self) -> Duration {
        self.to - self.from
    }
}

/// Groups replies into per-MAC intervals: a MAC has stopped answering once more than three probe
/// periods pass without a reply from it; the next reply starts a new interval. Sorted by start.
pub fn answer_intervals(replies: &[(Duration, Mac)], period: Duration) -> Vec<Interval> {
    let gap = period * 3;
    let mut sorted = replies.to_vec();
    sorted.sort_by_key(|(t, m)| (*m, *t));
    let mut out: Vec<Interval> = Vec::new();
    for (t, mac) in sorted {
        match out.last_mut() {
            Some(iv) if iv.mac == mac && t.saturating_sub(iv.to) <= gap => {
                iv.to = t;
                iv.replies += 1;
            }
            _ => out.push(Interval {
                mac,
                from: t,
                to: t,
                replies: 1,
            }),
        }
    }
    out.sort_by_key(|iv| (iv.from, iv.mac));
    out
}

/// Every pair of intervals of different MACs that intersect (touching, or a single reply inside
/// the other's interval, counts: its duration is then zero). Empty means a clean handover.
pub fn overlaps(intervals: &[Interval]) -> Vec<Overlap> {
    let mut out = Vec::new();
    for (i, a) in intervals.iter().enumerate() {
        for b in &intervals[i + 1..] {
            if a.mac == b.mac {
                continue;
            }
            let (from, to) = (a.from.max(b.from), a.to.min(b.to));
            if from <= to {
                out.push(Overlap {
                    a: a.mac,
                    b: b.mac,
                    from,
                    to,
                });
            }
        }
    }
    out
}

/// Sum of the overlap durations.
pub fn total_overlap(intervals: &[Interval]) -> Duration {
    overlaps(intervals).iter().map(Overlap::duration).sum()
}

/// Stretches between the first and the last interval during which nobody answered, `(from, to)`
/// (e.g. the failover time of a VIP).
pub fn silent_gaps(intervals: &[Interval]) -> Vec<(Duration, Duration)> {
    let mut sorted: Vec<&Interval> = intervals.iter().collect();
    sorted.sort_by_key(|iv| iv.from);
    let mut out = Vec::new();
    let mut covered: Option<Duration> = None;
    for iv in sorted {
        if let Some(end) = covered {
            if iv.from > end {
                out.push((end, iv.from));
            }
        }
        covered = Some(covered.map_or(iv.to, |e| e.max(iv.to)));
    }
    out
}
