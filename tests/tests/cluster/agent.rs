//! The `realserver-agent` binary against an in-test AgentReports server on loopback (reports,
//! leader hints, reconnects, the control socket and CLI verbs, config errors) and against real
//! directors (hint to the leader, matching, drain), and `setup` / `teardown` in fresh network
//! namespaces (root; these panic, never skip, without it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use lvs_proto::v1::agent_reports_server::{AgentReports, AgentReportsServer};
use lvs_tests::netns::{Host, Topology};
use lvs_tests::{bin, free_port};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

// ---------------------------------------------------------------------------------------------
// An in-test director: accepts Report streams, records reports, acks them (or not).

#[derive(Default)]
struct FakeState {
    reports: Mutex<Vec<pb::AgentReport>>,
    /// Report calls, including redirected ones.
    calls: AtomicUsize,
    /// Answer UNAVAILABLE with this leader hint.
    redirect: Mutex<Option<String>>,
    /// Record reports but do not acknowledge them.
    hold_acks: AtomicBool,
    /// The error every ack carries (empty = accepted).
    ack_error: Mutex<String>,
}

#[derive(Clone)]
struct Svc(Arc<FakeState>);

type AckStream = Pin<Box<dyn Stream<Item = Result<pb::ReportAck, Status>> + Send>>;

#[tonic::async_trait]
impl AgentReports for Svc {
    type ReportStream = AckStream;

    async fn report(
        &self,
        req: Request<Streaming<pb::AgentReport>>,
    ) -> Result<Response<AckStream>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(hint) = self.0.redirect.lock().unwrap().clone() {
            let mut s = Status::unavailable("not the leader");
            s.metadata_mut()
                .insert(lvs_proto::LEADER_HINT_KEY, hint.parse().unwrap());
            return Err(s);
        }
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let st = self.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(r)) = inbound.next().await {
                let seq = r.seq;
                let matched = r
                    .addresses
                    .iter()
                    .map(|a| format!("tcp/192.0.2.1:80 {a}:80"))
                    .collect();
                st.reports.lock().unwrap().push(r);
                if st.hold_acks.load(Ordering::SeqCst) {
                    continue;
                }
                let error = st.ack_error.lock().unwrap().clone();
                if tx
                    .send(Ok(pb::ReportAck {
                        seq,
                        matched,
                        error,
                    }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A fake director on its own runtime, so `stop` drops every connection at once, like a killed
/// process.
struct FakeDirector {
    addr: String,
    state: Arc<FakeState>,
    rt: Option<tokio::runtime::Runtime>,
}

impl FakeDirector {
    fn start() -> FakeDirector {
        let port = free_port();
        FakeDirector::on(
            TcpListener::bind(("127.0.0.1", port)).unwrap(),
            Default::default(),
        )
    }

    /// Serves on `l` (which may belong to another network namespace).
    fn on(l: TcpListener, state: Arc<FakeState>) -> FakeDirector {
        let addr = l.local_addr().unwrap().to_string();
        l.set_nonblocking(true).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let svc = Svc(state.clone());
        rt.spawn(async move {
            let l = tokio::net::TcpListener::from_std(l).unwrap();
            tonic::transport::Server::builder()
                .add_service(AgentReportsServer::new(svc))
                .serve_with_incoming(TcpListenerStream::new(l))
                .await
                .unwrap();
        });
        FakeDirector {
            addr,
            state,
            rt: Some(rt),
        }
    }

    /// Stops serving and drops every connection.
    fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }

    /// Starts again on the same address with the same recorded state.
    fn restart(&mut self) {
        self.stop();
        let l = TcpListener::bind(&self.addr).expect("rebind the fake director's port");
        let fresh = FakeDirector::on(l, self.state.clone());
        *self = fresh;
    }

    fn reports(&self) -> Vec<pb::AgentReport> {
        self.state.reports.lock().unwrap().clone()
    }
}

impl Drop for FakeDirector {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// The agent process.

struct Agent {
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// How `start` runs the binary (a netns prefix, or nothing).
    prefix: Vec<String>,
}

impl Agent {
    /// Writes a config with `body` after the test's control socket and state dir.
    fn new(body: &str) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("lvs-agent-")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("agent.sock");
        let config = dir.path().join("agent.toml");
        let text = format!(
            "control_socket = \"{}\"\nstate_dir = \"{}\"\n{body}",
            socket.display(),
            dir.path().join("state").display()
        );
        std::fs::write(&config, text).unwrap();
        Agent {
            log: dir.path().join("agent.log"),
            dir,
            config,
            socket,
            child: None,
            prefix: Vec::new(),
        }
    }

    fn start(&mut self) {
        assert!(self.child.is_none());
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = match self.prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(bin("realserver-agent"));
                c
            }
            None => Command::new(bin("realserver-agent")),
        };
        cmd.arg("run")
            .arg("--insecure")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        self.child = Some(cmd.spawn().expect("spawn realserver-agent"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("agent exited ({st}) at start:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "agent socket not up within 10 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `realserver-agent ARGS --socket <this agent's socket>`.
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("realserver-agent"));
        cmd.args(args).arg("--socket").arg(&self.socket);
        cmd.output().expect("run realserver-agent")
    }

    /// `cli` that must succeed; its stdout.
    fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "realserver-agent {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// One raw request on the control socket.
    fn raw(&self, line: &str) -> serde_json::Value {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(s).read_line(&mut reply).unwrap();
        serde_json::from_str(&reply).unwrap()
    }

    /// Polls `f` every 20 ms until it returns `Some`; panics with the agent's log after
    /// `timeout`.
    fn wait<T>(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; agent log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "===== agent log ({}) =====\n{}",
                self.dir.path().display(),
                self.log_text()
            );
        }
    }
}

fn basic_config(directors: &[&str]) -> String {
    let list: Vec<String> = directors.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "name = \"agent-test\"\ndirectors = [{}]\naddresses = [\"192.0.2.10\"]\ninterval_ms = 200\n",
        list.join(", ")
    )
}

/// Answers every connection with a small HTTP 200 response.
fn http_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf);
                let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------------------------
// Reports, leader hints, reconnects

#[test]
fn reports_arrive_every_interval_with_sane_values() {
    let _turn = lvs_tests::serial::group("agent");
    let d = FakeDirector::start();
    // Two established connections on a served port.
    let served = TcpListener::bind("127.0.0.1:0").unwrap();
    let served_port = served.local_addr().unwrap().port();
    let _c1 = TcpStream::connect(("127.0.0.1", served_port)).unwrap();
    let _c2 = TcpStream::connect(("127.0.0.1", served_port)).unwrap();
    let _accepted = (served.accept().unwrap(), served.accept().unwrap());
    let http = http_server();
    let mut a = Agent::new(&format!(
        "{}ports = [{served_port}]\n\n[[probe]]\nkind = \"http\"\nport = {http}\npath = \"/health\"\ntimeout_ms = 150\n\n[[probe]]\nkind = \"tcp\"\nport = {http}\ntimeout_ms = 150\n",
        basic_config(&[&d.addr])
    ));
    a.start();
    let start = Instant::now();
    let reports = a.wait("8 reports", Duration::from_secs(10), || {
        let r = d.reports();
        (r.len() >= 8).then_some(r)
    });
    // 8 reports (the first goes out on connect) take about 7 intervals.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(4), "8 reports took {took:?}");

    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    for (i, r) in reports.iter().enumerate() {
        assert_eq!(r.agent, "agent-test");
        assert_eq!(r.addresses, vec!["192.0.2.10"]);
        assert_eq!(r.seq, reports[0].seq + i as u64, "seqs consecutive");
        assert_eq!(r.interval_ms, 200);
        assert!((0.0..=1.0).contains(&r.cpu_busy), "{r:?}");
        assert!(
            (0.0..=1.0).contains(&r.cpu_steal) && r.cpu_steal <= r.cpu_busy,
            "{r:?}"
        );
        assert!(r.cpus >= 1 && r.cpus <= cpus.max(1) * 4, "{r:?}");
        assert!(r.load1 >= 0.0 && r.load5 >= 0.0 && r.load15 >= 0.0);
        assert!(r.mem_total_bytes > 0 && r.mem_available_bytes <= r.mem_total_bytes);
        assert!(!r.draining);
        assert!(r.app.is_empty());
    }
    // Steady state: about one report per interval.
    let gaps: Vec<u64> = reports[2..]
        .windows(2)
        .map(|w| w[1].sent_unix_ms - w[0].sent_unix_ms)
        .collect();
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!((150..=300).contains(&median), "gaps {gaps:?}");
    let last = reports.last().unwrap();
    assert_eq!(
        last.conns,
        vec![pb::PortConns {
            port: served_port as u32,
            established: 2
        }]
    );
    assert_eq!(last.probes.len(), 2, "{:?}", last.probes);
    for p in &last.probes {
        assert!(p.ok && p.latency_us > 0 && p.error.is_empty(), "{p:?}");
        assert_eq!(p.port, http as u32);
    }
    assert_eq!(last.probes[0].kind, "http");
    assert_eq!(last.probes[1].kind, "tcp");

    let status = a.cli_ok(&["status"]);
    assert!(
        status.contains(&format!("connected    {}", d.addr)),
        "{status}"
    );
    assert!(
        status.contains("matched tcp/192.0.2.1:80 192.0.2.10:80"),
        "{status}"
    );
}

#[test]
fn follows_the_leader_hint() {
    let _turn = lvs_tests::serial::group("agent");
    let leader = FakeDirector::start();
    let follower = FakeDirector::start();
    *follower.state.redirect.lock().unwrap() = Some(leader.addr.clone());
    // Only the follower is configured: the agent can reach the leader only through the hint.
    let mut a = Agent::new(&basic_config(&[&follower.addr]));
    a.start();
    a.wait("reports at the leader", Duration::from_secs(5), || {
        (leader.reports().len() >= 2).then_some(())
    });
    assert!(follower.state.calls.load(Ordering::SeqCst) >= 1);
    assert!(follower.reports().is_empty());
    let log = a.log_text();
    assert!(log.contains("following its hint"), "{log}");
    let st = a.raw(r#"{"cmd":"status"}"#);
    assert_eq!(st["status"]["connected"], leader.addr.as_str());
}

#[test]
fn reconnects_after_the_director_restarts() {
    let _turn = lvs_tests::serial::group("agent");
    let mut d = FakeDirector::start();
    let mut a = Agent::new(&basic_config(&[&d.addr]));
    a.start();
    a.wait("first reports", Duration::from_secs(5), || {
        (d.reports().len() >= 2).then_some(())
    });
    d.stop();
    let before = d.reports().last().unwrap().seq;
    std::thread::sleep(Duration::from_millis(500));
    let st = a.raw(r#"{"cmd":"status"}"#);
    assert!(st["status"]["connected"].is_null(), "{st}");
    d.restart();
    let r = a.wait("reports after the restart", Duration::from_secs(5), || {
        d.reports().into_iter().find(|r| r.seq > before + 1)
    });
    assert_eq!(r.agent, "agent-test");
    assert!(a.log_text().contains("report stream ended"));
}

/// The agent's `/metrics`: counters move with reports, rejections and a reconnect; the last
/// sample, the probe and the drain flag show.
#[test]
fn metrics_endpoint_follows_reports_acks_and_reconnects() {
    let _turn = lvs_tests::serial::group("agent");
    use lvs_tests::metrics::{http_get, scrape, Metrics};
    let mut d = FakeDirector::start();
    let served = TcpListener::bind("127.0.0.1:0").unwrap();
    let served_port = served.local_addr().unwrap().port();
    let _c = TcpStream::connect(("127.0.0.1", served_port)).unwrap();
    let _accepted = served.accept().unwrap();
    let http = http_server();
    let maddr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut a = Agent::new(&format!(
        "{}ports = [{served_port}]\n\n[metrics]\nlisten = \"{maddr}\"\n\n[[probe]]\nkind = \"http\"\nport = {http}\ntimeout_ms = 150\n",
        basic_config(&[&d.addr])
    ));
    a.start();
    let g = |m: &Metrics, n: &str| m.get(n, &[]).unwrap_or(-1.0);
    let m = a.wait(
        "3 acknowledged reports in /metrics",
        Duration::from_secs(10),
        || {
            scrape(maddr)
                .ok()
                .filter(|m| g(m, "lvs_agent_reports_acked_total") >= 3.0)
        },
    );
    let recorded = d.reports().len() as f64;
    let m2 = scrape(maddr).unwrap();
    assert!(
        g(&m2, "lvs_agent_reports_sent_total") >= recorded,
        "sent {} < {recorded} the director got",
        g(&m2, "lvs_agent_reports_sent_total")
    );
    assert_eq!(g(&m, "lvs_agent_connected"), 1.0);
    assert_eq!(g(&m, "lvs_agent_reports_rejected_total"), 0.0);
    assert_eq!(g(&m, "lvs_agent_reconnects_total"), 0.0);
    assert_eq!(g(&m, "lvs_agent_draining"), 0.0);
    assert!((0.0..2.0).contains(&g(&m, "lvs_agent_last_ack_age_seconds")));
    assert!((0.0..=1.0).contains(&g(&m, "lvs_agent_cpu_busy_ratio")));
    assert!(g(&m, "lvs_agent_cpus") >= 1.0);
    assert!(g(&m, "lvs_agent_memory_total_bytes") > 0.0);
    let port = served_port.to_string();
    assert_eq!(
        m.get("lvs_agent_established_connections", &[("port", &port)]),
        Some(1.0)
    );
    let probe = [("kind", "http"), ("port", &*http.to_string())];
    assert_eq!(m.get("lvs_agent_probe_up", &probe), Some(1.0));
    let lat = m.get("lvs_agent_probe_latency_seconds", &probe).unwrap();
    assert!(lat > 0.0 && lat < 0.15, "probe latency {lat}");
    assert_eq!(m.types["lvs_agent_reports_sent"], "counter");

    // Rejections count, acceptances stop.
    *d.state.ack_error.lock().unwrap() = "addresses: 192.0.2.10 is not a real server".into();
    let m = a.wait("rejected reports", Duration::from_secs(10), || {
        scrape(maddr)
            .ok()
            .filter(|m| g(m, "lvs_agent_reports_rejected_total") >= 2.0)
    });
    let acked = g(&m, "lvs_agent_reports_acked_total");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        g(&scrape(maddr).unwrap(), "lvs_agent_reports_acked_total"),
        acked
    );
    d.state.ack_error.lock().unwrap().clear();

    // Drain shows at once.
    a.cli_ok(&["drain", "--no-wait"]);
    assert_eq!(g(&scrape(maddr).unwrap(), "lvs_agent_draining"), 1.0);

    // A director restart: disconnected, then one reconnect.
    d.stop();
    a.wait("connected 0", Duration::from_secs(10), || {
        scrape(maddr)
            .ok()
            .filter(|m| g(m, "lvs_agent_connected") == 0.0)
    });
    d.restart();
    let m = a.wait("a reconnect", Duration::from_secs(10), || {
        scrape(maddr).ok().filter(|m| {
            g(m, "lvs_agent_connected") == 1.0
                && g(m, "lvs_agent_reconnects_total") == 1.0
                && g(m, "lvs_agent_reports_acked_total") > acked
        })
    });
    assert!(g(&m, "lvs_agent_reports_sent_total") > acked);

    let r = http_get(maddr, "/").unwrap();
    assert_eq!(r.status, 404, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Control socket and CLI

#[test]
fn drain_ready_status_and_metrics() {
    let _turn = lvs_tests::serial::group("agent");
    let d = FakeDirector::start();
    let mut a = Agent::new(&basic_config(&[&d.addr]));
    a.start();
    a.wait("first report", Duration::from_secs(5), || {
        (!d.reports().is_empty()).then_some(())
    });

    // A metric shows up in the next report; bad ones are refused with a reason.
    a.cli_ok(&["metric", "busy", "0.42"]);
    a.wait("busy=0.42 in a report", Duration::from_secs(3), || {
        d.reports()
            .iter()
            .any(|r| r.app.get("busy") == Some(&0.42))
            .then_some(())
    });
    // Not refreshed within 3 intervals, it expires.
    a.wait("busy to expire", Duration::from_secs(3), || {
        let r = d.reports();
        let first = r.iter().position(|r| r.app.contains_key("busy"))?;
        r[first..].iter().any(|r| r.app.is_empty()).then_some(())
    });
    let o = a.cli(&["metric", "busy", "1.5"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("between 0 and 1"),
        "{o:?}"
    );
    let r = a.raw(r#"{"cmd":"metric","name":"Bad-Name","value":1}"#);
    assert_eq!(r["ok"], false);
    assert!(r["error"].as_str().unwrap().contains("[a-z0-9_]"), "{r}");
    let r = a.raw(r#"{"cmd":"launch"}"#);
    assert_eq!(r["ok"], false, "{r}");

    // drain waits for the director's acknowledgement of a draining report.
    d.state.hold_acks.store(true, Ordering::SeqCst);
    let mut drain = Command::new(bin("realserver-agent"))
        .args(["drain", "--timeout", "10s", "--socket"])
        .arg(&a.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    a.wait("a draining report", Duration::from_secs(3), || {
        d.reports().iter().any(|r| r.draining).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        drain.try_wait().unwrap().is_none(),
        "drain returned before any acknowledgement"
    );
    let released = Instant::now();
    d.state.hold_acks.store(false, Ordering::SeqCst);
    let out = a.wait("drain to return", Duration::from_secs(5), || {
        drain.try_wait().unwrap()
    });
    assert!(out.success(), "drain failed: {out}");
    assert!(released.elapsed() < Duration::from_secs(2));
    let mut stdout = String::new();
    drain
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(stdout.contains("acknowledged by director"), "{stdout}");

    let status = a.cli_ok(&["status"]);
    assert!(status.contains("draining     yes"), "{status}");
    let json: serde_json::Value = serde_json::from_str(&a.cli_ok(&["status", "--json"])).unwrap();
    assert_eq!(json["draining"], true);
    assert_eq!(json["last_report"]["draining"], true);
    assert_eq!(json["directors"][0], d.addr.as_str());

    // Without acks, drain gives up after its timeout (non-zero), and --no-wait does not wait.
    d.state.hold_acks.store(true, Ordering::SeqCst);
    let o = a.cli(&["drain", "--timeout", "300ms"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("acknowledged"),
        "{o:?}"
    );
    let t = Instant::now();
    a.cli_ok(&["drain", "--no-wait"]);
    assert!(t.elapsed() < Duration::from_secs(2));
    d.state.hold_acks.store(false, Ordering::SeqCst);

    // Draining survives a restart of the agent.
    a.stop();
    let seen = d.reports().len();
    // A report of the old process may still have been in flight, and the new process may have
    // replaced its first report before it connected: tell them apart by when they were sent.
    let restarted = lvs_ops::clock::unix_ms();
    a.start();
    let first = a.wait(
        "a report after the restart",
        Duration::from_secs(10),
        || {
            d.reports()[seen..]
                .iter()
                .find(|r| r.sent_unix_ms >= restarted)
                .cloned()
        },
    );
    assert!(first.draining, "draining was lost over a restart");

    a.cli_ok(&["ready"]);
    a.wait(
        "a report with draining=false",
        Duration::from_secs(3),
        || {
            d.reports()[seen..]
                .iter()
                .any(|r| !r.draining)
                .then_some(())
        },
    );
    let json = a.raw(r#"{"cmd":"status"}"#);
    assert_eq!(json["status"]["draining"], false);
}

#[test]
fn ack_errors_are_logged_once_and_fail_drain() {
    let _turn = lvs_tests::serial::group("agent");
    let d = FakeDirector::start();
    *d.state.ack_error.lock().unwrap() = "unknown address 192.0.2.10".into();
    let mut a = Agent::new(&basic_config(&[&d.addr]));
    a.start();
    a.wait("6 reports", Duration::from_secs(5), || {
        (d.reports().len() >= 6).then_some(())
    });
    let o = a.cli(&["drain", "--timeout", "3s"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("rejected") && err.contains("unknown address"),
        "{err}"
    );
    let log = a.log_text();
    assert_eq!(
        log.matches("director rejected a report").count(),
        1,
        "one log line per distinct ack error:\n{log}"
    );
    let status = a.cli_ok(&["status"]);
    assert!(status.contains("REJECTED: unknown address"), "{status}");
}

#[test]
fn bad_config_fails_naming_the_field() {
    let _turn = lvs_tests::serial::group("agent");
    let cases = [
        (
            "directors = [\"127.0.0.1:1\"]\ninterval_ms = 5\n",
            "interval_ms = 5",
        ),
        (
            "directors = [\"127.0.0.1:1\"]\ncolour = \"blue\"\n",
            "colour",
        ),
        (
            "directors = [\"localhost\"]\n",
            "directors[0] = \"localhost\"",
        ),
        ("addresses = [\"192.0.2.1\"]\n", "directors"),
        (
            "directors = [\"127.0.0.1:1\"]\naddresses = [\"192.0.2.300\"]\n",
            "addresses[0] = \"192.0.2.300\"",
        ),
        (
            "directors = [\"127.0.0.1:1\"]\n[[probe]]\nkind = \"icmp\"\nport = 1\n",
            "icmp",
        ),
    ];
    for (body, want) in cases {
        let a = Agent::new(body);
        let o = Command::new(bin("realserver-agent"))
            .arg("run")
            .arg("--insecure")
            .arg("--config")
            .arg(&a.config)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{body:?} was accepted");
        assert!(
            err.contains(want),
            "{body:?}: error {err:?} does not name {want:?}"
        );
        assert!(err.contains(&a.config.display().to_string()), "{err}");
        assert!(!a.socket.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// setup / teardown in a fresh network namespace

fn sysctl(h: &Host, key: &str) -> String {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    h.in_ns(|| std::fs::read_to_string(&path))
        .unwrap()
        .unwrap_or_else(|e| panic!("reading {path} in {}: {e}", h.ns))
        .trim()
        .to_string()
}

/// Addresses on `dev` in the host's namespace.
fn addrs_on(h: &Host, dev: &str) -> Vec<IpAddr> {
    let out = h.run(&["ip", "-j", "addr", "show", "dev", dev]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0]["addr_info"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["local"].as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn agent_in(h: &Host, args: &[&str]) -> Output {
    let mut cmd = h.cmd(bin("realserver-agent").to_str().unwrap());
    cmd.args(args);
    cmd.output().expect("run realserver-agent in the namespace")
}

fn agent_ok(h: &Host, args: &[&str]) -> String {
    let o = agent_in(h, args);
    assert!(
        o.status.success(),
        "realserver-agent {args:?} failed in {}: {}{}",
        h.ns,
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn setup_and_teardown_dr_in_a_namespace() {
    let _turn = lvs_tests::serial::group("agent");
    let mut topo = Topology::new();
    let h = topo.add_host("rs1");
    let vip4 = topo.ipv4_for(200);
    let vip6 = topo.ipv6_for(200);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("setup.json");
    let state_s = state.to_str().unwrap();
    // A non-default value, to see teardown restore it rather than reset it.
    h.set_sysctl("net.ipv4.conf.lo.arp_announce", "1").unwrap();
    let keys = [
        "net.ipv4.conf.all.arp_ignore",
        "net.ipv4.conf.all.arp_announce",
        "net.ipv4.conf.lo.arp_ignore",
        "net.ipv4.conf.lo.arp_announce",
    ];
    let before: Vec<String> = keys.iter().map(|k| sysctl(&h, k)).collect();
    let lo_before = addrs_on(&h, "lo");

    let v4 = vip4.to_string();
    let v6 = vip6.to_string();
    let args = [
        "setup",
        "--mode",
        "dr",
        "--vip",
        &v4,
        "--vip",
        &v6,
        "--state-file",
        state_s,
    ];
    let out = agent_ok(&h, &args);
    for want in [
        "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
        "set net.ipv4.conf.lo.arp_announce = 2 (was 1)",
        &format!("added {vip4}/32 to lo"),
        &format!("added {vip6}/128 to lo"),
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let lo = addrs_on(&h, "lo");
    assert!(
        lo.contains(&IpAddr::V4(vip4)) && lo.contains(&IpAddr::V6(vip6)),
        "{lo:?}"
    );
    assert_eq!(
        keys.iter().map(|k| sysctl(&h, k)).collect::<Vec<_>>(),
        ["1", "2", "1", "2"]
    );
    assert!(!h.has_addr(vip4), "the VIP must not be on eth0");

    // Idempotent: nothing to do the second time.
    let again = agent_ok(&h, &args);
    assert!(again.starts_with("unchanged"), "{again}");
    assert_eq!(again.lines().count(), 1, "{again}");

    // The default addresses of a report are the host's own, not the VIPs on lo.
    let d = {
        let l = h
            .in_ns(|| TcpListener::bind("127.0.0.1:0"))
            .unwrap()
            .unwrap();
        FakeDirector::on(l, Default::default())
    };
    let mut a = Agent::new(&format!(
        "name = \"rs1\"\ndirectors = [\"{}\"]\ninterval_ms = 200\n[setup]\nmode = \"dr\"\nvips = [\"{vip4}\", \"{vip6}\"]\n",
        d.addr
    ));
    a.prefix = vec!["ip".into(), "netns".into(), "exec".into(), h.ns.clone()];
    a.start();
    let r = a.wait(
        "a report from the namespace",
        Duration::from_secs(5),
        || d.reports().into_iter().find(|r| !r.addresses.is_empty()),
    );
    let mut want = vec![h.ipv4.to_string(), h.ipv6.to_string()];
    want.sort();
    let mut got = r.addresses.clone();
    got.sort();
    assert_eq!(got, want);
    a.stop();

    let out = agent_ok(&h, &["teardown", "--state-file", state_s]);
    assert!(out.contains(&format!("removed {vip4}/32 from lo")), "{out}");
    assert!(
        out.contains("set net.ipv4.conf.lo.arp_announce = 1 (was 2)"),
        "{out}"
    );
    assert_eq!(addrs_on(&h, "lo"), lo_before);
    assert_eq!(
        keys.iter().map(|k| sysctl(&h, k)).collect::<Vec<_>>(),
        before
    );
    assert!(!state.exists(), "teardown removes the state file");
    let out = agent_ok(&h, &["teardown", "--state-file", state_s]);
    assert!(out.contains("nothing to undo"), "{out}");
    drop(topo);
}

/// TUN needs the ipip module. Where the kernel has it, the whole cycle is checked; where it has
/// not (some CI kernels), setup must fail naming the module — both are asserted, never skipped.
#[test]
fn setup_tun_in_a_namespace() {
    let _turn = lvs_tests::serial::group("agent");
    let mut topo = Topology::new();
    let h = topo.add_host("rs1");
    let vip = topo.ipv4_for(201);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("setup.json");
    let state_s = state.to_str().unwrap();
    let v = vip.to_string();
    let args = [
        "setup",
        "--mode",
        "tun",
        "--vip",
        &v,
        "--state-file",
        state_s,
    ];
    let ipip = Command::new("modprobe")
        .arg("ipip")
        .status()
        .is_ok_and(|s| s.success())
        || Path::new("/sys/module/ipip").exists();
    if !ipip {
        eprintln!("the ipip module cannot be loaded here: checking that setup refuses clearly");
        let o = agent_in(&h, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "setup succeeded without ipip");
        assert!(err.contains("ipip") && err.contains("modprobe"), "{err}");
        return;
    }
    let rp_before = sysctl(&h, "net.ipv4.conf.all.rp_filter");
    let out = agent_ok(&h, &args);
    assert!(out.contains(&format!("added {vip}/32 to tunl0")), "{out}");
    assert!(out.contains("set link tunl0 up"), "{out}");
    assert!(addrs_on(&h, "tunl0").contains(&IpAddr::V4(vip)));
    assert_eq!(sysctl(&h, "net.ipv4.conf.all.rp_filter"), "0");
    assert_eq!(sysctl(&h, "net.ipv4.conf.tunl0.rp_filter"), "0");
    assert_eq!(sysctl(&h, "net.ipv4.conf.tunl0.arp_ignore"), "1");
    assert!(agent_ok(&h, &args).starts_with("unchanged"));
    agent_ok(&h, &["teardown", "--state-file", state_s]);
    assert!(addrs_on(&h, "tunl0").is_empty());
    assert_eq!(sysctl(&h, "net.ipv4.conf.all.rp_filter"), rp_before);
}

// ---------------------------------------------------------------------------------------------
// Against real directors

/// Three directors on loopback; the agent knows only a follower, follows its hint to the leader,
/// is matched to its real server, and a drain shows up in the leader's `GetAgents`.
#[test]
fn real_directors_take_reports_and_drain() {
    let _turn = lvs_tests::serial::group("agent");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = lvs_tests::Cluster::start(3);
    let _logs = c.logs_on_panic();
    let leader = rt.block_on(c.wait_leader(Duration::from_secs(20)));
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
    rt.block_on(async {
        c.admin(leader)
            .await
            .add_service(pb::ServiceRequest {
                service: Some(pb::Service {
                    key: "tcp/10.77.0.1:80".into(),
                    scheduler: "wlc".into(),
                    weight_policy: "load".into(),
                    reals: vec![lvs_tests::real("192.0.2.10", 80, 100)],
                    ..Default::default()
                }),
                expected_revision: None,
            })
            .await
            .expect("add the service")
    });
    let mut a = Agent::new(&basic_config(&[&c.api_addr(follower)]));
    a.start();
    let leader_api = c.api_addr(leader);
    a.wait(
        "an accepted report at the leader",
        Duration::from_secs(10),
        || {
            let s = a.raw(r#"{"cmd":"status"}"#);
            let s = &s["status"];
            (s["connected"] == leader_api.as_str()
                && s["last_ack"]["error"] == ""
                && s["last_ack"]["matched"][0] == "tcp/10.77.0.1:80 192.0.2.10:80")
                .then_some(())
        },
    );
    let out = a.cli_ok(&["drain", "--timeout", "10s"]);
    assert!(out.contains(&format!("director {leader_api}")), "{out}");
    let state = rt.block_on(async {
        c.admin(follower)
            .await
            .get_agents(pb::GetAgentsRequest {})
            .await
            .expect("GetAgents")
            .into_inner()
    });
    let info = state
        .agents
        .iter()
        .find(|i| i.agent == "agent-test")
        .unwrap_or_else(|| panic!("agent missing from {state:?}"));
    assert!(info.connected, "{info:?}");
    assert_eq!(info.addresses, vec!["192.0.2.10"]);
    assert!(info.last.as_ref().is_some_and(|r| r.draining), "{info:?}");
    // The leader's weight engine takes the real server out of new connections.
    a.wait(
        "the real server drained at the leader",
        Duration::from_secs(5),
        || {
            let s = rt.block_on(async {
                c.admin(leader)
                    .await
                    .get_agents(pb::GetAgentsRequest {})
                    .await
                    .ok()
            })?;
            s.into_inner()
                .reals
                .iter()
                .find(|r| r.address == "192.0.2.10" && r.draining && r.effective_weight == 0)
                .map(|r| assert_eq!(r.agent, "agent-test"))
        },
    );
    a.cli_ok(&["ready"]);
}
