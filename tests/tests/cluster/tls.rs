//! mTLS on every gRPC surface of a three-director cluster whose certificates come from
//! `lvsctl pki`: the admin API, the Raft port and the agent stream each refuse a client without a
//! certificate, with a certificate from another CA and with the wrong role; an agent may only
//! report for the address in its certificate; refusals are logged with the peer's identity; and a
//! director without `[tls]` refuses to start unless `--insecure`.

use std::path::Path;
use std::time::Duration;

use lvs_proto::raft::raft_client::RaftClient;
use lvs_proto::raft::PingRequest;
use lvs_proto::tls::{Tls, TlsFiles};
use lvs_proto::v1 as pb;
use lvs_proto::v1::agent_reports_client::AgentReportsClient;
use lvs_tests::{bin, pki_run, Cluster};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

fn load(pki: &Path, who: &str) -> Tls {
    load_under(pki, pki, who)
}

/// `who`'s certificate from `certs`, trusting the CA of `ca_dir`: a client of another CA that
/// knows (and so accepts) the cluster's public CA certificate.
fn load_under(ca_dir: &Path, certs: &Path, who: &str) -> Tls {
    let pki = certs;
    TlsFiles {
        ca: ca_dir.join("ca.pem"),
        cert: pki.join(format!("{who}.pem")),
        key: pki.join(format!("{who}.key")),
    }
    .load()
    .unwrap_or_else(|e| panic!("{who}: {e}"))
}

/// How a test client dials: the cluster's CA and one of its identities, a foreign CA's
/// identity, TLS with no client certificate, or plaintext.
enum Dial<'a> {
    As(&'a Tls),
    NoCert(&'a Path),
    Plain,
}

async fn connect(addr: &str, how: Dial<'_>) -> Result<Channel, String> {
    let ep = match how {
        Dial::As(t) => lvs_proto::tls::endpoint(addr, Some(t)).map_err(|e| e.to_string())?,
        Dial::NoCert(pki) => {
            let ca = std::fs::read(pki.join("ca.pem")).unwrap();
            Endpoint::from_shared(format!("https://{addr}"))
                .unwrap()
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(ca))
                        .domain_name("127.0.0.1"),
                )
                .map_err(|e| e.to_string())?
        }
        Dial::Plain => lvs_proto::tls::endpoint(addr, None).map_err(|e| e.to_string())?,
    };
    ep.connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| format!("{e:?}"))
}

/// A Raft Ping; the error is the gRPC status or the connection failure.
async fn raft_ping(addr: &str, how: Dial<'_>) -> Result<(), (Option<Code>, String)> {
    let ch = connect(addr, how).await.map_err(|e| (None, e))?;
    RaftClient::new(ch)
        .ping(PingRequest {})
        .await
        .map(|_| ())
        .map_err(|s| (Some(s.code()), s.message().to_string()))
}

fn report(agent: &str, addr: &str, seq: u64) -> pb::AgentReport {
    pb::AgentReport {
        agent: agent.into(),
        addresses: vec![addr.into()],
        seq,
        sent_unix_ms: lvs_ops::clock::unix_ms(),
        interval_ms: 1000,
        cpu_busy: 0.2,
        cpus: 4,
        load1: 0.5,
        load5: 0.5,
        load15: 0.5,
        mem_total_bytes: 1 << 30,
        mem_available_bytes: 1 << 29,
        ..Default::default()
    }
}

/// Sends each report on one stream (150 ms apart, under the flood limit) and returns each
/// ack's error (empty = accepted), or the status the stream failed with.
async fn agent_stream(
    addr: &str,
    how: Dial<'_>,
    reports: Vec<pb::AgentReport>,
) -> Result<Vec<String>, (Option<Code>, String)> {
    let ch = connect(addr, how).await.map_err(|e| (None, e))?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut acks = AgentReportsClient::new(ch)
        .report(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| (Some(s.code()), s.message().to_string()))?
        .into_inner();
    let mut out = Vec::new();
    for r in reports {
        tx.send(r).await.unwrap();
        match tokio::time::timeout(Duration::from_secs(5), acks.message()).await {
            Ok(Ok(Some(a))) => out.push(a.error),
            Ok(Ok(None)) => return Err((None, "stream ended".into())),
            Ok(Err(s)) => return Err((Some(s.code()), s.message().to_string())),
            Err(_) => return Err((None, "no ack within 5 s".into())),
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    Ok(out)
}

fn ok(o: lvs_tests::CmdOutput) -> String {
    assert!(o.ok(), "lvsctl failed: {}{}", o.stdout, o.stderr);
    o.stdout
}

fn refused_at_handshake(r: &Result<impl std::fmt::Debug, (Option<Code>, String)>, what: &str) {
    match r {
        // TLS 1.3 clients learn of a refused certificate only on their first read, so the
        // call fails as unavailable, unknown or cancelled; never with an answer from a handler.
        // A plaintext client gets a protocol error (internal).
        Err((None, _))
        | Err((Some(Code::Unavailable | Code::Unknown | Code::Cancelled | Code::Internal), _)) => {}
        other => panic!("{what}: expected the TLS handshake to fail, got {other:?}"),
    }
}

fn denied(r: &Result<impl std::fmt::Debug, (Option<Code>, String)>, want: &str, what: &str) {
    match r {
        Err((Some(Code::PermissionDenied), m)) if m.contains(want) => {}
        other => panic!("{what}: expected PERMISSION_DENIED containing {want:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grpc_surface_refuses_missing_foreign_and_wrong_role_certificates() {
    let _turn = lvs_tests::serial::group("tls");
    let mut c = Cluster::start_tls(3);
    let _logs = c.logs_on_panic();
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let pki = c.pki.clone().unwrap();
    let api = c.api_addr(leader);
    let raft = c.raft_addr(leader);

    // Identities: an agent bound to 10.0.1.11; a foreign CA with an admin operator, a director
    // and an agent of its own.
    pki_run(&pki, &["issue", "agent", "web-1", "--ip", "10.0.1.11"]);
    let other = c.dir.path().join("other-pki");
    pki_run(&other, &["init", "--cn", "someone else's CA"]);
    pki_run(&other, &["issue", "operator", "mallory", "--role", "admin"]);
    pki_run(
        &other,
        &["issue", "director", "director-1", "--ip", "127.0.0.1"],
    );
    pki_run(&other, &["issue", "agent", "web-1", "--ip", "10.0.1.11"]);
    let admin = load(&pki, "admin");
    let agent = load(&pki, "web-1");
    let director = load(&pki, "director-1");
    let foreign_admin = load_under(&pki, &other, "mallory");
    let foreign_director = load_under(&pki, &other, "director-1");
    let foreign_agent = load_under(&pki, &other, "web-1");

    // --- Admin API through lvsctl: the admin writes, the reader reads and previews only.
    let add = ["service", "add", "-t", "192.0.2.10:80", "-s", "wlc"];
    ok(c.lvsctl(&add).await);
    for r in ["10.0.1.11", "10.0.1.12"] {
        ok(c.lvsctl(&["real", "add", "-t", "192.0.2.10:80", "-r", r])
            .await);
    }
    let hist = ok(c.lvsctl(&["history"]).await);
    assert!(
        hist.contains("operator-admin:admin"),
        "history names the certificate: {hist}"
    );

    let as_reader = |args: &[&str]| {
        let mut cmd = std::process::Command::new(bin("lvsctl"));
        cmd.envs(c.lvsctl_env("reader"))
            .arg("--endpoints")
            .arg(c.endpoints())
            .args(args);
        cmd.output().unwrap()
    };
    let o = as_reader(&["list"]);
    assert!(
        o.status.success(),
        "reader lists: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("192.0.2.10:80"));
    let o = as_reader(&["real", "add", "-t", "192.0.2.10:80", "-r", "10.0.1.13"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a read-only operator wrote");
    assert!(
        err.contains("read-only operator \"reader\" may not call /lvs.v1.Admin/AddReal"),
        "{err}"
    );
    let exported = ok(c.lvsctl(&["export"]).await);
    let file = c.dir.path().join("site.toml");
    std::fs::write(&file, exported.replace("10.0.1.12", "10.0.1.14")).unwrap();
    let f = file.to_str().unwrap();
    let o = as_reader(&["apply", "-f", f, "--dry-run"]);
    assert!(
        o.status.success(),
        "reader previews: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("10.0.1.14"));
    let o = as_reader(&["apply", "-f", f]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("may not call /lvs.v1.Admin/Apply without dry_run"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Without a certificate, in plaintext, with a foreign CA's admin, as an agent.
    let mut cmd = std::process::Command::new(bin("lvsctl"));
    let o = cmd
        .arg("--endpoints")
        .arg(&api)
        .arg("list")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no client certificate"));
    let o = std::process::Command::new(bin("lvsctl"))
        .args(["--insecure", "--timeout", "3", "--endpoints", &api, "list"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "plaintext lvsctl got an answer");
    let get = |ch: Channel| async move {
        lvs_proto::v1::admin_client::AdminClient::new(ch)
            .get_config(pb::GetConfigRequest::default())
            .await
            .map(|_| ())
            .map_err(|s| (Some(s.code()), s.message().to_string()))
    };
    let r = match connect(&api, Dial::NoCert(&pki)).await {
        Ok(ch) => get(ch).await,
        Err(e) => Err((None, e)),
    };
    refused_at_handshake(&r, "admin API without a client certificate");
    let r = match connect(&api, Dial::As(&foreign_admin)).await {
        Ok(ch) => get(ch).await,
        Err(e) => Err((None, e)),
    };
    refused_at_handshake(&r, "admin API with another CA's admin certificate");
    let r = get(connect(&api, Dial::As(&agent)).await.unwrap()).await;
    denied(
        &r,
        "agent \"web-1\" may not call /lvs.v1.Admin/GetConfig",
        "admin API as an agent",
    );
    assert!(get(connect(&api, Dial::As(&admin)).await.unwrap())
        .await
        .is_ok());

    // --- Raft: only directors of this CA.
    assert!(
        raft_ping(&raft, Dial::As(&director)).await.is_ok(),
        "a director pings"
    );
    refused_at_handshake(&raft_ping(&raft, Dial::Plain).await, "raft in plaintext");
    refused_at_handshake(
        &raft_ping(&raft, Dial::NoCert(&pki)).await,
        "raft without a certificate",
    );
    refused_at_handshake(
        &raft_ping(&raft, Dial::As(&foreign_director)).await,
        "raft with another CA's director certificate",
    );
    denied(
        &raft_ping(&raft, Dial::As(&admin)).await,
        "admin operator \"admin\" may not call /lvs.raft.v1.Raft/Ping",
        "raft as an admin operator",
    );
    denied(
        &raft_ping(&raft, Dial::As(&agent)).await,
        "may not call /lvs.raft.v1.Raft/Ping",
        "raft as an agent",
    );

    // --- Agent reports: only agents, only for their own address and name.
    let acks = agent_stream(
        &api,
        Dial::As(&agent),
        vec![
            report("web-1", "10.0.1.11", 1),
            report("web-1", "10.0.1.12", 2),
            report("web-2", "10.0.1.11", 3),
        ],
    )
    .await
    .unwrap();
    assert_eq!(acks[0], "", "own address accepted");
    assert!(
        acks[1].contains("10.0.1.12 not in the certificate of agent \"web-1\""),
        "{acks:?}"
    );
    assert!(
        acks[2].contains("\"web-2\" is not the name in the certificate"),
        "{acks:?}"
    );
    let one = || vec![report("web-1", "10.0.1.11", 9)];
    refused_at_handshake(
        &agent_stream(&api, Dial::NoCert(&pki), one()).await,
        "agent stream without a certificate",
    );
    refused_at_handshake(
        &agent_stream(&api, Dial::As(&foreign_agent), one()).await,
        "agent stream with another CA's agent certificate",
    );
    denied(
        &agent_stream(&api, Dial::As(&admin), one()).await,
        "admin operator \"admin\" may not call /lvs.v1.AgentReports/Report",
        "agent stream as an operator",
    );

    // Refusals are in the leader's log with who asked.
    let log = c.log_text(leader);
    for want in [
        "TLS handshake refused",
        "identity=admin operator \"mallory\"",
        "identity=director \"director-1\"",
        "identity=none",
        "call refused",
        "reason=read-only operator \"reader\" may not call /lvs.v1.Admin/AddReal",
        "reason=agent \"web-1\" may not call /lvs.raft.v1.Raft/Ping",
        "agent report rejected",
    ] {
        assert!(log.contains(want), "leader log lacks {want:?}");
    }
}

#[test]
fn a_director_without_tls_needs_insecure_and_bad_tls_files_are_named() {
    let _turn = lvs_tests::serial::group("tls");
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "node_id = 1\nraft_addr = \"127.0.0.1:1\"\napi_addr = \"127.0.0.1:2\"\ndata_dir = \"{}\"\n[vip]\nenabled = false\n[ipvs]\nenabled = false\n",
        dir.path().join("data").display()
    );
    let cfg = dir.path().join("d.toml");
    std::fs::write(&cfg, &base).unwrap();
    let o = std::process::Command::new(bin("director"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tls: the configuration has no [tls] section"),
        "{err}"
    );

    let pki = dir.path().join("pki");
    pki_run(&pki, &["init"]);
    pki_run(&pki, &["issue", "director", "d1", "--ip", "127.0.0.1"]);
    pki_run(&pki, &["issue", "director", "d2", "--ip", "127.0.0.1"]);
    let tls = |cert: &str, key: &str| {
        format!(
            "{base}[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            pki.join("ca.pem").display(),
            pki.join(cert).display(),
            pki.join(key).display()
        )
    };
    let check = |text: String| {
        std::fs::write(&cfg, text).unwrap();
        let o = std::process::Command::new(bin("director"))
            .arg("--check")
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(check(tls("d1.pem", "d1.key")), (true, String::new()));
    let (ok, err) = check(tls("d1.pem", "d2.key"));
    assert!(
        !ok && err.contains("tls.key") && err.contains("does not fit tls.cert"),
        "{err}"
    );
    let (ok, err) = check(tls("missing.pem", "d1.key"));
    assert!(
        !ok && err.contains("tls.cert: cannot read") && err.contains("missing.pem"),
        "{err}"
    );
    let (ok, err) = check(tls("d1.key", "d1.key"));
    assert!(!ok && err.contains("tls.cert"), "{err}");
}

/// The real agent binary reports over mTLS with a certificate from `lvsctl pki`, and the leader
/// lists it; the same agent with another CA's certificate never gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realserver_agent_reports_over_mtls() {
    let _turn = lvs_tests::serial::group("tls");
    let mut c = Cluster::start_tls(1);
    let _logs = c.logs_on_panic();
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let pki = c.pki.clone().unwrap();
    ok(
        c.lvsctl(&["service", "add", "-t", "192.0.2.10:80", "-s", "wlc"])
            .await,
    );
    ok(
        c.lvsctl(&["real", "add", "-t", "192.0.2.10:80", "-r", "10.0.1.11"])
            .await,
    );
    pki_run(&pki, &["issue", "agent", "web-1", "--ip", "10.0.1.11"]);
    let other = c.dir.path().join("other-pki");
    pki_run(&other, &["init"]);
    pki_run(&other, &["issue", "agent", "web-1", "--ip", "10.0.1.11"]);

    let run_agent = |cert_dir: &Path, tag: &str| {
        let dir = c.dir.path().join(format!("agent-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("agent.toml");
        std::fs::write(
            &cfg,
            format!(
                "name = \"web-1\"\ndirectors = [\"{}\"]\naddresses = [\"10.0.1.11\"]\ninterval_ms = 200\ncontrol_socket = \"{}\"\nstate_dir = \"{}\"\n\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
                c.api_addr(leader),
                dir.join("agent.sock").display(),
                dir.display(),
                pki.join("ca.pem").display(),
                cert_dir.join("web-1.pem").display(),
                cert_dir.join("web-1.key").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        std::process::Command::new(bin("realserver-agent"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    let agents = |c: &Cluster| {
        let o = std::process::Command::new(bin("lvsctl"))
            .envs(c.lvsctl_env("admin"))
            .args(["--endpoints", &c.endpoints(), "--output", "json", "agents"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };

    // Another CA's agent: refused at the handshake, so the leader never lists it.
    let mut foreign = run_agent(&other, "foreign");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!agents(&c).contains("web-1"), "{}", agents(&c));
    let _ = foreign.kill();
    let _ = foreign.wait();
    assert!(c.log_text(leader).contains("identity=agent \"web-1\""));

    let mut agent = run_agent(&pki, "ours");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let a = agents(&c);
        let accepted = serde_json::from_str::<serde_json::Value>(&a)
            .ok()
            .and_then(|v| {
                v["agents"].as_array()?.iter().find_map(|x| {
                    (x["agent"] == "web-1").then(|| x["reports"].as_u64().unwrap_or(0))
                })
            })
            .unwrap_or(0);
        if accepted >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never showed up: {a}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = agent.kill();
    let _ = agent.wait();
}
