//! The leader's derived state on a loopback cluster (kernel IPVS off, so the weights are read
//! back through `GetAgents`; the lab reads them from the kernel): agent reports become weights,
//! followers send agents to the leader, bad reports are rejected without changing anything,
//! drains and failed health checks take a real server to weight 0, a sorry server stands in when
//! none is left, and the transitions reach the watch stream.

use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use lvs_proto::v1::agent_reports_client::AgentReportsClient;
use lvs_tests::{Cluster, LogsOnPanic};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

const SETTLE: Duration = Duration::from_secs(20);
const SVC: &str = "tcp/10.0.0.10:80";

/// An agent's report stream to one director.
struct Stream {
    tx: mpsc::Sender<pb::AgentReport>,
    acks: tonic::Streaming<pb::ReportAck>,
    seq: u64,
}

impl Stream {
    async fn open(api: &str) -> Result<Stream, tonic::Status> {
        let mut client = AgentReportsClient::connect(format!("http://{api}"))
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel(4);
        let acks = client.report(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Stream { tx, acks, seq: 0 })
    }

    /// Sends a report and returns its ack (or the status that ended the stream).
    async fn send(&mut self, mut r: pb::AgentReport) -> Result<pb::ReportAck, tonic::Status> {
        self.seq += 1;
        r.seq = self.seq;
        self.tx
            .send(r)
            .await
            .map_err(|_| tonic::Status::cancelled("stream closed"))?;
        match tokio::time::timeout(Duration::from_secs(10), self.acks.message()).await {
            Ok(Ok(Some(a))) => Ok(a),
            Ok(Ok(None)) => Err(tonic::Status::cancelled("no ack, stream ended")),
            Ok(Err(s)) => Err(s),
            Err(_) => Err(tonic::Status::deadline_exceeded("no ack within 10 s")),
        }
    }
}

fn report(agent: &str, addr: &str, latency_us: u64, port: u16) -> pb::AgentReport {
    pb::AgentReport {
        agent: agent.into(),
        addresses: vec![addr.into()],
        interval_ms: 200,
        cpu_busy: 0.2,
        cpus: 2,
        load1: 0.3,
        mem_total_bytes: 1 << 30,
        mem_available_bytes: 1 << 29,
        probes: vec![pb::Probe {
            port: port as u32,
            kind: "tcp".into(),
            ok: true,
            latency_us,
            error: String::new(),
        }],
        ..Default::default()
    }
}

/// Accepts (and drops) connections on `addr` until aborted; aborting closes the listener.
async fn listen(addr: (&str, u16)) -> (u16, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            drop(s);
        }
    });
    (port, task)
}

async fn agents(c: &Cluster, id: u64) -> Result<pb::AgentsState, String> {
    c.admin(id)
        .await
        .get_agents(pb::GetAgentsRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|e| format!("{e:?}"))
}

fn real_state<'a>(s: &'a pb::AgentsState, addr: &str) -> Option<&'a pb::RealState> {
    s.reals
        .iter()
        .find(|r| r.service == SVC && r.address == addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_health_and_drains_shape_the_weights() {
    let _turn = lvs_tests::serial::group("weights");
    let mut c = Cluster::start(3);
    let _logs: LogsOnPanic = c.logs_on_panic();
    let leader = c.wait_leader(SETTLE).await;
    let follower = c.ids().into_iter().find(|i| *i != leader).unwrap();

    // Two real servers on loopback addresses with a TCP listener each for the health check.
    let (port, l1) = listen(("127.0.0.11", 0)).await;
    let (_, l2) = listen(("127.0.0.12", port)).await;
    let config = format!(
        r#"
[[service]]
key = "{SVC}"
scheduler = "wlc"
weight_policy = "latency"
health_check = {{ kind = "tcp", interval_ms = 200, timeout_ms = 200, rise = 2, fall = 2 }}
sorry_server = {{ address = "127.0.0.99", port = {port}, forward = "masq" }}

[[service.reals]]
address = "127.0.0.11"
port = {port}
weight = 10
forward = "masq"

[[service.reals]]
address = "127.0.0.12"
port = {port}
weight = 10
forward = "masq"
"#
    );
    let path = c.dir.path().join("weights.toml");
    std::fs::write(&path, config).unwrap();
    let out = c.lvsctl(&["apply", "-f", path.to_str().unwrap()]).await;
    assert!(out.ok(), "apply: {}{}", out.stdout, out.stderr);

    // A follower refuses agents and names the leader.
    let api = |id: u64| c.api_addr(id);
    let e = match Stream::open(&api(follower)).await {
        Err(e) => e,
        Ok(mut s) => s
            .send(report("rs1", "127.0.0.11", 1000, port))
            .await
            .unwrap_err(),
    };
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let hint = e
        .metadata()
        .get(lvs_proto::LEADER_HINT_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(hint, Some(api(leader)), "{e:?}");

    // Bad reports are answered with the field and value, and change nothing.
    let mut bad = Stream::open(&api(leader)).await.unwrap();
    let ack = bad
        .send(report("ghost", "192.0.2.77", 1000, port))
        .await
        .unwrap();
    assert_eq!(
        ack.error,
        "addresses: 192.0.2.77 is not a real server of any service"
    );
    let mut nan = report("rs1", "127.0.0.11", 1000, port);
    nan.cpu_busy = f64::NAN;
    let ack = bad.send(nan).await.unwrap();
    assert_eq!(ack.error, "cpu_busy: NaN is not a fraction in 0..=1");

    // rs1 answers its probe in 1 ms, rs2 in 80 ms: under "latency" rs2's weight falls below rs1's.
    let mut s1 = Stream::open(&api(leader)).await.unwrap();
    let mut s2 = Stream::open(&api(leader)).await.unwrap();
    let ack = s1
        .send(report("rs1", "127.0.0.11", 1000, port))
        .await
        .unwrap();
    assert_eq!(ack.error, "");
    assert_eq!(ack.matched, vec![format!("{SVC} 127.0.0.11:{port}")]);
    // A flood (reports closer than 100 ms) is refused.
    let ack = s1
        .send(report("rs1", "127.0.0.11", 1000, port))
        .await
        .unwrap();
    assert!(ack.error.starts_with("report rate: "), "{ack:?}");
    let start = Instant::now();
    let (w1, w2) = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let a1 = s1
            .send(report("rs1", "127.0.0.11", 1000, port))
            .await
            .unwrap();
        let a2 = s2
            .send(report("rs2", "127.0.0.12", 80_000, port))
            .await
            .unwrap();
        assert_eq!((a1.error.as_str(), a2.error.as_str()), ("", ""));
        let st = agents(&c, follower).await.unwrap();
        let (r1, r2) = (
            real_state(&st, "127.0.0.11").unwrap().clone(),
            real_state(&st, "127.0.0.12").unwrap().clone(),
        );
        if r2.effective_weight > 0 && r2.effective_weight * 2 <= r1.effective_weight {
            assert_eq!(r1.configured_weight, 10);
            assert_eq!(r1.policy, "latency");
            assert_eq!(r1.agent, "rs1");
            assert_eq!(r1.health, "up");
            break (r1.effective_weight, r2.effective_weight);
        }
        if start.elapsed() > Duration::from_secs(60) {
            c.fail(format!("weights did not follow latency: {r1:?} {r2:?}"));
        }
    };
    let st = agents(&c, leader).await.unwrap();
    assert_eq!(st.node_id, leader);
    let names: Vec<&str> = st.agents.iter().map(|a| a.agent.as_str()).collect();
    assert_eq!(
        names,
        vec!["rs1", "rs2"],
        "the rejected ghost is not registered"
    );
    let stats = st.stats.unwrap();
    assert!(stats.reports_rejected >= 3, "{stats:?}");
    // At most one control period plus scheduling delay on a loaded machine.
    assert!(stats.report_to_weight_p99_ms <= 3000.0, "{stats:?}");
    eprintln!("latency weights rs1 {w1} rs2 {w2}; {stats:?}");

    // The watch stream (on the leader) carries derived-state transitions from now on.
    let mut watch = c
        .admin(leader)
        .await
        .watch(pb::WatchRequest { from_revision: 0 })
        .await
        .unwrap()
        .into_inner();

    // rs2 drains: weight 0, and back on ready.
    let mut d = report("rs2", "127.0.0.12", 80_000, port);
    d.draining = true;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s2.send(d).await.unwrap().error, "");
    c.wait_for("rs2 drained to weight 0", SETTLE, async || {
        let st = agents(&c, leader).await?;
        let r = real_state(&st, "127.0.0.12").unwrap();
        (r.draining && r.effective_weight == 0)
            .then_some(())
            .ok_or(format!("{r:?}"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        s2.send(report("rs2", "127.0.0.12", 80_000, port))
            .await
            .unwrap()
            .error,
        ""
    );
    c.wait_for("rs2 ready again", SETTLE, async || {
        let st = agents(&c, leader).await?;
        let r = real_state(&st, "127.0.0.12").unwrap();
        (!r.draining && r.effective_weight > 0)
            .then_some(())
            .ok_or(format!("{r:?}"))
    })
    .await;

    // rs1's service stops: its health check quiesces it, then the sorry server stands in once
    // rs2 is gone too; both come back.
    l1.abort();
    c.wait_for("rs1 down by health check", SETTLE, async || {
        let st = agents(&c, leader).await?;
        let r = real_state(&st, "127.0.0.11").unwrap();
        (r.health == "down" && r.effective_weight == 0 && r.in_kernel)
            .then_some(())
            .ok_or(format!("{r:?}"))
    })
    .await;
    l2.abort();
    c.wait_for("sorry server in use", SETTLE, async || {
        let st = agents(&c, leader).await?;
        st.sorry
            .iter()
            .any(|s| s.service == SVC && s.sorry == format!("127.0.0.99:{port}"))
            .then_some(())
            .ok_or(format!("{:?}", st.sorry))
    })
    .await;
    let _l1 = listen(("127.0.0.11", port)).await;
    c.wait_for("rs1 up again, sorry server withdrawn", SETTLE, async || {
        let st = agents(&c, leader).await?;
        let r = real_state(&st, "127.0.0.11").unwrap();
        (r.health == "up" && r.effective_weight > 0 && st.sorry.is_empty())
            .then_some(())
            .ok_or(format!("{r:?} sorry {:?}", st.sorry))
    })
    .await;

    // The watch stream saw the drain, the health transitions and the sorry server.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), watch.message()).await {
            Ok(Ok(Some(e))) => seen.extend(
                e.changes
                    .iter()
                    .filter(|ch| ch.op == "event")
                    .map(|ch| format!("{} {}", ch.object, ch.detail)),
            ),
            _ => break,
        }
    }
    let text = seen.join("\n");
    for want in [
        "agent 127.0.0.12 drained",
        "agent 127.0.0.12 ready",
        &format!("real {SVC} 127.0.0.11:{port} health: down"),
        "sorry server in use",
        &format!("real {SVC} 127.0.0.11:{port} health: up"),
        "sorry server withdrawn",
    ] {
        assert!(text.contains(want), "watch stream lacks {want:?}:\n{text}");
    }

    // `lvsctl weights` shows configured beside effective weights.
    let out = c.lvsctl(&["weights", SVC]).await;
    assert!(out.ok(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("CONFIGURED  EFFECTIVE"),
        "{}",
        out.stdout
    );
    let out = c.lvsctl(&["--output", "json", "agents"]).await;
    assert!(out.ok(), "{}{}", out.stdout, out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["agents"][0]["agent"], "rs1");
}
