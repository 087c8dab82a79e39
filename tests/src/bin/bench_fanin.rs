//! Agent fan-in benchmark: one process simulates many real-server agents (default 5000), each
//! with its own `Report` stream (about 100 streams per HTTP/2 connection) sending one report per
//! second with plausible, slightly noisy values, staggered across the second. Against a
//! single-node director it starts on loopback (the default: a config of one real server per
//! agent, 100 per service, `weight_policy = "load"`) or an existing one (`--director ADDR`).
//!
//! After a warm-up it measures the leader's CPU from /proc/PID/stat (utime + stime over the
//! window, as % of one core) and then reads `report_to_weight_p99_ms` from `GetAgents`. The last
//! line is `RESULT agents=N leader_cpu_pct=X report_to_weight_p99_ms=Y acks_per_s=Z ...`.
//!
//! Options: `--agents N`, `--seconds S` (measuring window, default 30), `--warmup S` (default 5),
//! `--director ADDR` (any director's API address; the leader is looked up), `--pid PID` (the
//! leader's process when it is not found from its listening port), `--no-setup` (the existing
//! director already has the services), `--streams-per-conn N` (default 100).

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lvs_ops::clock::unix_ms;
use lvs_proto::v1 as pb;
use lvs_proto::v1::admin_client::AdminClient;
use lvs_proto::v1::agent_reports_client::AgentReportsClient;
use lvs_proto::v1::cluster_client::ClusterClient;
use lvs_tests::{Cluster, Timing};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// Real servers per service.
const REALS_PER_SERVICE: usize = 100;
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

struct Opts {
    agents: usize,
    seconds: u64,
    warmup: u64,
    director: Option<String>,
    pid: Option<u32>,
    setup: bool,
    per_conn: usize,
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "bench-fanin: {msg}\nusage: bench-fanin [--agents N] [--seconds S] [--warmup S] \
         [--director ADDR [--pid PID] [--no-setup]] [--streams-per-conn N]"
    );
    std::process::exit(2);
}

fn parse_args() -> Opts {
    let mut o = Opts {
        agents: 5000,
        seconds: 30,
        warmup: 5,
        director: None,
        pid: None,
        setup: true,
        per_conn: 100,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> T {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{name} {v:?} is not a number")))
        }
        match a.as_str() {
            "--agents" => o.agents = num("--agents", value("--agents")),
            "--seconds" => o.seconds = num("--seconds", value("--seconds")),
            "--warmup" => o.warmup = num("--warmup", value("--warmup")),
            "--director" => o.director = Some(value("--director")),
            "--pid" => o.pid = Some(num("--pid", value("--pid"))),
            "--no-setup" => o.setup = false,
            "--streams-per-conn" => {
                o.per_conn = num("--streams-per-conn", value("--streams-per-conn"))
            }
            "-h" | "--help" => usage("agent fan-in benchmark"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if o.agents == 0 || o.seconds == 0 || o.per_conn == 0 {
        usage("--agents, --seconds and --streams-per-conn must be positive");
    }
    o
}

/// Agent `i`'s real-server address: 10.128.0.1, ... (last octet 1..=250).
fn agent_addr(i: usize) -> Ipv4Addr {
    let x = i / 250;
    Ipv4Addr::new(
        10,
        128 + (x / 256) as u8,
        (x % 256) as u8,
        (i % 250 + 1) as u8,
    )
}

fn service_key(s: usize) -> String {
    format!("tcp/10.255.{}.{}:80", s / 250, s % 250 + 1)
}

/// xorshift64*: plenty for noise, and no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-a, a].
    fn noise(&mut self, a: f64) -> f64 {
        (self.next() * 2.0 - 1.0) * a
    }
}

/// A simulated host: a steady load level per agent plus noise on every report.
struct SimHost {
    name: String,
    addr: String,
    base_busy: f64,
    /// Requests per busy second: the application's `rps` is this times its busy fraction, so
    /// the leader's load controller has a capacity to estimate.
    capacity: f64,
    rng: Rng,
}

impl SimHost {
    fn new(i: usize) -> SimHost {
        let mut rng = Rng::new(i as u64 + 1);
        SimHost {
            name: format!("bench-{i:05}"),
            addr: agent_addr(i).to_string(),
            base_busy: 0.2 + 0.6 * rng.next(),
            capacity: 200.0 + 800.0 * rng.next(),
            rng,
        }
    }

    fn report(&mut self, seq: u64) -> pb::AgentReport {
        let busy = (self.base_busy + self.rng.noise(0.03)).clamp(0.0, 1.0);
        let cpus = 8;
        let load = busy * cpus as f64;
        let gib = 1u64 << 30;
        pb::AgentReport {
            agent: self.name.clone(),
            addresses: vec![self.addr.clone()],
            seq,
            sent_unix_ms: unix_ms(),
            interval_ms: REPORT_INTERVAL.as_millis() as u32,
            cpu_busy: busy,
            cpu_steal: (0.01 * self.rng.next()).min(busy),
            cpus,
            load1: (load + self.rng.noise(0.2)).max(0.0),
            load5: load,
            load15: load,
            mem_total_bytes: 16 * gib,
            mem_available_bytes: 8 * gib + (self.rng.noise(0.5) * gib as f64) as u64,
            conns: vec![pb::PortConns {
                port: 80,
                established: (busy * 200.0 + self.rng.noise(5.0)).max(0.0) as u32,
            }],
            probes: vec![pb::Probe {
                port: 80,
                kind: "http".into(),
                ok: true,
                latency_us: (1500.0 * (1.0 + busy) + self.rng.noise(200.0)) as u64,
                error: String::new(),
            }],
            app: [
                ("busy".to_string(), busy),
                (
                    "rps".to_string(),
                    (self.capacity * busy + self.rng.noise(5.0)).max(0.0),
                ),
            ]
            .into(),
            draining: false,
        }
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    /// Reports not handed to the stream because the previous one was still queued.
    dropped: AtomicU64,
    acks: AtomicU64,
    rejected: AtomicU64,
    stream_failures: AtomicU64,
    measuring: AtomicBool,
    /// Send-to-ack times during the measuring window, microseconds.
    ack_us: Mutex<Vec<u64>>,
    /// Distinct errors (ack errors and stream failures) with counts.
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn error(&self, e: String) {
        let mut m = self.errors.lock().unwrap();
        if m.len() < 20 || m.contains_key(&e) {
            *m.entry(e).or_default() += 1;
        }
    }
}

/// One simulated agent: a stream, a report per interval from `first`, until `end`.
async fn agent(i: usize, channel: Channel, c: Arc<Counters>, first: Instant, end: Instant) {
    let mut host = SimHost::new(i);
    let mut tick = tokio::time::interval_at(first.into(), REPORT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while Instant::now() < end {
        let (tx, rx) = mpsc::channel::<pb::AgentReport>(1);
        let mut client = AgentReportsClient::new(channel.clone());
        let mut acks = match client.report(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                c.stream_failures.fetch_add(1, Ordering::Relaxed);
                c.error(format!("stream: {:?}: {}", s.code(), s.message()));
                tokio::time::sleep(REPORT_INTERVAL).await;
                continue;
            }
        };
        let mut inflight: VecDeque<(u64, Instant)> = VecDeque::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if Instant::now() >= end {
                        return;
                    }
                    seq += 1;
                    match tx.try_send(host.report(seq)) {
                        Ok(()) => {
                            c.sent.fetch_add(1, Ordering::Relaxed);
                            inflight.push_back((seq, Instant::now()));
                        }
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            c.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
                m = acks.message() => match m {
                    Ok(Some(ack)) => {
                        c.acks.fetch_add(1, Ordering::Relaxed);
                        if !ack.error.is_empty() {
                            c.rejected.fetch_add(1, Ordering::Relaxed);
                            c.error(format!("ack: {}", ack.error));
                        }
                        while let Some((s, t)) = inflight.front().copied() {
                            if s > ack.seq {
                                break;
                            }
                            inflight.pop_front();
                            if s == ack.seq && c.measuring.load(Ordering::Relaxed) {
                                c.ack_us.lock().unwrap().push(t.elapsed().as_micros() as u64);
                            }
                        }
                    }
                    Ok(None) => {
                        c.stream_failures.fetch_add(1, Ordering::Relaxed);
                        c.error("stream: ended by the director".into());
                        break;
                    }
                    Err(s) => {
                        c.stream_failures.fetch_add(1, Ordering::Relaxed);
                        c.error(format!("stream: {:?}: {}", s.code(), s.message()));
                        break;
                    }
                }
            }
        }
        tokio::time::sleep(REPORT_INTERVAL).await;
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks as f64 / hz)
}

/// The local process listening on TCP `port`, from /proc/net/tcp{,6} and /proc/*/fd.
fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for line in text.lines().skip(1) {
            let c: Vec<&str> = line.split_whitespace().collect();
            let local_port = c
                .get(1)
                .and_then(|l| l.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && c.get(3) == Some(&"0A") {
                inodes.extend(c.get(9).map(|i| format!("socket:[{i}]")));
            }
        }
    }
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Some(pid);
                }
            }
        }
    }
    None
}

fn endpoint(addr: &str) -> Endpoint {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("director address")
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Adds the services (one real server per agent), tolerating ones that already exist.
async fn add_services(api: &str, agents: usize) {
    let mut admin = AdminClient::new(endpoint(api).connect_lazy());
    let services = agents.div_ceil(REALS_PER_SERVICE);
    for s in 0..services {
        let reals = (s * REALS_PER_SERVICE..((s + 1) * REALS_PER_SERVICE).min(agents))
            .map(|i| pb::RealServer {
                address: agent_addr(i).to_string(),
                port: 80,
                weight: Some(100),
                ..Default::default()
            })
            .collect();
        let r = admin
            .add_service(pb::ServiceRequest {
                service: Some(pb::Service {
                    key: service_key(s),
                    scheduler: "wlc".into(),
                    weight_policy: "load".into(),
                    reals,
                    ..Default::default()
                }),
                expected_revision: None,
            })
            .await;
        match r {
            Ok(_) => {}
            Err(e) if e.code() == tonic::Code::AlreadyExists || e.message().contains("exists") => {}
            Err(e) => {
                eprintln!("bench-fanin: adding service {}: {e}", service_key(s));
                std::process::exit(1);
            }
        }
    }
    println!(
        "config: {services} services x {REALS_PER_SERVICE} real servers (weight_policy = \"load\")"
    );
}

/// The leader's API address, as any director tells it.
async fn leader_api(api: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = ClusterClient::new(endpoint(api).connect_lazy());
        match c.status(pb::StatusRequest {}).await {
            Ok(s) if !s.get_ref().leader_api_addr.is_empty() => {
                return s.into_inner().leader_api_addr
            }
            Ok(_) => {}
            Err(e) if Instant::now() > deadline => {
                eprintln!("bench-fanin: director {api}: {e}");
                std::process::exit(1);
            }
            Err(_) => {}
        }
        if Instant::now() > deadline {
            eprintln!("bench-fanin: director {api} knows no leader");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The director to load: the one given (following it to the leader), or a single-node
/// loopback cluster started here and kept alive for the run. Returns the leader's API address
/// and its pid when known.
async fn target(o: &Opts) -> (Option<Cluster>, String, Option<u32>) {
    match &o.director {
        Some(addr) => {
            let leader = leader_api(addr).await;
            let port = leader.rsplit_once(':').and_then(|(_, p)| p.parse().ok());
            let pid = o.pid.or_else(|| port.and_then(pid_listening_on));
            println!(
                "director: leader at {leader} (asked {addr}), pid {}",
                pid.map_or("unknown (not local? give --pid)".into(), |p| p.to_string())
            );
            (None, leader, pid)
        }
        None => {
            let mut c = Cluster::start_with(1, Timing::default());
            c.wait_leader(Duration::from_secs(30)).await;
            let api = c.api_addr(1);
            let pid = c.nodes[0].pid();
            println!(
                "director: single node at {api}, pid {}, files in {}",
                pid.unwrap_or(0),
                c.dir.path().display()
            );
            (Some(c), api, pid)
        }
    }
}

/// `n` HTTP/2 connections to `api`; exits when one cannot be made.
async fn connect_all(api: &str, n: usize) -> Vec<Channel> {
    let mut channels = Vec::with_capacity(n);
    for _ in 0..n {
        match endpoint(api).connect().await {
            Ok(ch) => channels.push(ch),
            Err(e) => {
                eprintln!("bench-fanin: connecting to {api}: {e:?}");
                std::process::exit(1);
            }
        }
    }
    channels
}

/// Prints the leader's view of the agents; returns its report-to-weight p99 (NaN without it).
fn print_agents_state(state: &Result<tonic::Response<pb::AgentsState>, tonic::Status>) -> f64 {
    let s = match state {
        Ok(s) => s.get_ref(),
        Err(e) => {
            println!("GetAgents failed: {:?}: {}", e.code(), e.message());
            return f64::NAN;
        }
    };
    let st = s.stats.unwrap_or_default();
    let connected = s.agents.iter().filter(|a| a.connected).count();
    let mut phases: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &s.reals {
        *phases.entry(r.phase.as_str()).or_default() += 1;
    }
    let weights: Vec<u32> = s.reals.iter().map(|r| r.effective_weight).collect();
    println!(
        "GetAgents: {} agents ({connected} connected), {} real servers {phases:?}, \
         effective weights {}..{}",
        s.agents.len(),
        s.reals.len(),
        weights.iter().min().copied().unwrap_or(0),
        weights.iter().max().copied().unwrap_or(0)
    );
    println!("{st}");
    st.report_to_weight_p99_ms
}

/// CPU use of `pid` between two readings over `window` seconds, in percent of one core.
fn cpu_pct(before: Option<f64>, after: Option<f64>, window: f64) -> f64 {
    match (before, after) {
        (Some(a), Some(b)) => (b - a) / window * 100.0,
        _ => f64::NAN,
    }
}

/// What the measuring window saw.
struct Window {
    seconds: f64,
    sent: u64,
    acks: u64,
    leader_cpu: f64,
    self_cpu: f64,
}

/// Waits out the warm-up, then counts reports, acks and CPU over the window.
async fn measure(counters: &Counters, pid: Option<u32>, from: Instant, to: Instant) -> Window {
    tokio::time::sleep_until(from.into()).await;
    counters.measuring.store(true, Ordering::Relaxed);
    let cpu0 = pid.and_then(cpu_seconds);
    let self0 = cpu_seconds(std::process::id());
    let acks0 = counters.acks.load(Ordering::Relaxed);
    let sent0 = counters.sent.load(Ordering::Relaxed);
    let w0 = Instant::now();
    tokio::time::sleep_until(to.into()).await;
    let seconds = w0.elapsed().as_secs_f64();
    let cpu1 = pid.and_then(cpu_seconds);
    let self1 = cpu_seconds(std::process::id());
    counters.measuring.store(false, Ordering::Relaxed);
    Window {
        seconds,
        sent: counters.sent.load(Ordering::Relaxed) - sent0,
        acks: counters.acks.load(Ordering::Relaxed) - acks0,
        leader_cpu: cpu_pct(cpu0, cpu1, seconds),
        self_cpu: cpu_pct(self0, self1, seconds),
    }
}

/// The window's counts and the report-to-ack latencies; returns the ack p99 in ms.
fn print_window(w: &Window, counters: &Counters) -> f64 {
    let mut lat = std::mem::take(&mut *counters.ack_us.lock().unwrap());
    lat.sort_unstable();
    println!(
        "window {:.1} s: {} reports sent, {} acks ({:.0}/s), {} rejected, {} \
         dropped, {} stream failures (whole run)",
        w.seconds,
        w.sent,
        w.acks,
        w.acks as f64 / w.seconds,
        counters.rejected.load(Ordering::Relaxed),
        counters.dropped.load(Ordering::Relaxed),
        counters.stream_failures.load(Ordering::Relaxed)
    );
    println!(
        "report to ack: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    for (e, n) in counters.errors.lock().unwrap().iter() {
        println!("error x{n}: {e}");
    }
    println!(
        "leader cpu {:.1}% of one core; this load generator {:.1}%",
        w.leader_cpu, w.self_cpu
    );
    pct(&lat, 0.99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let o = parse_args();
    // The loopback cluster, if started here, lives for the whole run.
    let (cluster, api, pid) = target(&o).await;
    if o.setup {
        add_services(&api, o.agents).await;
    }
    let conns = o.agents.div_ceil(o.per_conn);
    let channels = connect_all(&api, conns).await;
    let counters = Arc::new(Counters::default());
    let t0 = Instant::now() + Duration::from_millis(500);
    let measure_from = t0 + Duration::from_secs(o.warmup);
    let measure_to = measure_from + Duration::from_secs(o.seconds);
    // Agents stop shortly after the window, once GetAgents has been read.
    let end = measure_to + Duration::from_secs(3);
    for i in 0..o.agents {
        // Staggered across the second, so the director sees a steady flow.
        let first = t0 + REPORT_INTERVAL.mul_f64(i as f64 / o.agents as f64);
        tokio::spawn(agent(
            i,
            channels[i / o.per_conn].clone(),
            counters.clone(),
            first,
            end,
        ));
    }
    println!(
        "agents: {} over {conns} HTTP/2 connections, one report per second each; warm-up {} s, \
         measuring {} s",
        o.agents, o.warmup, o.seconds
    );
    let w = measure(&counters, pid, measure_from, measure_to).await;
    let mut admin =
        AdminClient::new(endpoint(&api).connect_lazy()).max_decoding_message_size(256 << 20);
    let state = admin.get_agents(pb::GetAgentsRequest {}).await;
    let p99 = print_agents_state(&state);
    let ack_p99 = print_window(&w, &counters);
    if let (Some(c), true) = (&cluster, w.acks == 0 || state.is_err()) {
        c.dump_logs();
    }
    println!(
        "RESULT agents={} leader_cpu_pct={:.1} report_to_weight_p99_ms={p99:.1} \
         acks_per_s={:.0} ack_p99_ms={ack_p99:.2}",
        o.agents,
        w.leader_cpu,
        w.acks as f64 / w.seconds
    );
    drop(cluster);
    if w.acks == 0 {
        std::process::exit(1);
    }
}
