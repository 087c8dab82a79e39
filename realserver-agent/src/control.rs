//! The control socket: a Unix stream socket that `run` serves with one JSON request per line
//! and one JSON reply per line (drain, ready, status, metric), and the client the CLI verbs use.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

use crate::shared::Shared;

/// Default time a drain waits for the director's acknowledgement.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

fn yes() -> bool {
    true
}

/// A request line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Stop new connections: report draining=true; by default the reply waits until a director
    /// has acknowledged that report.
    Drain {
        #[serde(default = "yes")]
        wait: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Take new connections again (draining=false).
    Ready {},
    Status {},
    /// Post an application metric; it expires unless refreshed within 3 intervals.
    Metric {
        name: String,
        value: f64,
    },
}

fn error_reply(e: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": e.to_string()})
}

/// Answers one request line.
pub async fn handle_line(shared: &Shared, line: &str) -> Value {
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            return error_reply(format!(
                "bad request ({e}); expected one JSON object per line like \
                 {{\"cmd\":\"drain\"}}, {{\"cmd\":\"ready\"}}, {{\"cmd\":\"status\"}} or \
                 {{\"cmd\":\"metric\",\"name\":\"busy\",\"value\":0.5}}"
            ))
        }
    };
    match req {
        Request::Drain { wait, timeout_ms } => {
            let (seq, warning) = shared.set_draining(true);
            let mut reply = json!({"ok": true, "draining": true, "seq": seq});
            if wait {
                let timeout = timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_DRAIN_TIMEOUT);
                match shared.wait_ack(seq, timeout).await {
                    Ok(ack) => {
                        reply["acked_seq"] = json!(ack.seq);
                        reply["director"] = json!(ack.director);
                    }
                    Err(e) => reply = error_reply(e),
                }
            }
            if let Some(w) = warning {
                reply["warning"] = json!(w);
            }
            reply
        }
        Request::Ready {} => {
            let (seq, warning) = shared.set_draining(false);
            let mut reply = json!({"ok": true, "draining": false, "seq": seq});
            if let Some(w) = warning {
                reply["warning"] = json!(w);
            }
            reply
        }
        Request::Status {} => json!({"ok": true, "status": shared.status()}),
        Request::Metric { name, value } => match shared.set_metric(&name, value) {
            Ok(()) => json!({"ok": true}),
            Err(e) => error_reply(e),
        },
    }
}

/// Binds the socket with mode 0660. A leftover socket file nobody answers on is replaced; a
/// live one means another agent runs, which is an error.
pub fn bind(path: &Path) -> Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "control socket {}: another agent is already serving it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing stale control socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the directory of {}", path.display()))?;
    }
    let l = UnixListener::bind(path)
        .with_context(|| format!("binding control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod 0660 {}", path.display()))?;
    Ok(l)
}

/// Serves connections forever; each may send any number of requests.
pub async fn serve(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection(s, &shared).await {
                        warn!(error = %e, "control connection failed");
                    }
                });
            }
            Err(e) => {
                warn!(error = %e, "accepting a control connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(s: UnixStream, shared: &Shared) -> std::io::Result<()> {
    let (r, mut w) = s.into_split();
    let mut r = tokio::io::BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut r).take(MAX_LINE).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let too_long = n as u64 >= MAX_LINE && !buf.ends_with(b"\n");
        let reply = if too_long {
            error_reply(format!("request longer than {MAX_LINE} bytes"))
        } else {
            match std::str::from_utf8(&buf) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => handle_line(shared, line.trim()).await,
                Err(_) => error_reply("request is not UTF-8"),
            }
        };
        let mut out = reply.to_string();
        out.push('\n');
        w.write_all(out.as_bytes()).await?;
        if too_long {
            return Ok(());
        }
    }
}

/// Sends one request and returns the reply's JSON; an `"ok": false` reply becomes an error
/// carrying its message. Blocking: the CLI verbs need no runtime.
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Value> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the agent at {} (is `realserver-agent run` running, and is this the \
             control_socket of its config?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut line = serde_json::to_string(req).expect("request serialises");
    line.push('\n');
    s.write_all(line.as_bytes())
        .context("sending the request")?;
    let mut reply = String::new();
    BufReader::new(&s)
        .read_line(&mut reply)
        .with_context(|| format!("waiting for the agent's reply ({:?} limit)", timeout))?;
    if reply.is_empty() {
        bail!("the agent closed the connection without a reply");
    }
    let v: Value = serde_json::from_str(&reply).context("the agent's reply is not JSON")?;
    if v.get("ok") != Some(&Value::Bool(true)) {
        return Err(anyhow!(
            "{}",
            v.get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("the agent answered with an error")
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(dir: &Path) -> Arc<Shared> {
        let mut c = crate::config::parse(
            "name = \"t\"\ndirectors = [\"127.0.0.1:1\"]\naddresses = [\"10.0.0.1\"]",
            || None,
        )
        .unwrap();
        c.state_dir = dir.to_path_buf();
        Arc::new(Shared::new(&c).unwrap())
    }

    #[test]
    fn request_syntax() {
        let p = |s: &str| serde_json::from_str::<Request>(s);
        assert_eq!(
            p(r#"{"cmd":"drain"}"#).unwrap(),
            Request::Drain {
                wait: true,
                timeout_ms: None
            }
        );
        assert_eq!(
            p(r#"{"cmd":"drain","wait":false}"#).unwrap(),
            Request::Drain {
                wait: false,
                timeout_ms: None
            }
        );
        assert_eq!(p(r#"{"cmd":"ready"}"#).unwrap(), Request::Ready {});
        assert_eq!(
            p(r#"{"cmd":"metric","name":"busy","value":0.42}"#).unwrap(),
            Request::Metric {
                name: "busy".into(),
                value: 0.42
            }
        );
        assert!(p(r#"{"cmd":"ready","x":1}"#).is_err());
        assert!(p(r#"{"cmd":"reboot"}"#).is_err());
        assert!(p(r#"{"cmd":"metric","name":"busy"}"#).is_err());
        // What the CLI sends parses back to itself.
        let r = Request::Drain {
            wait: true,
            timeout_ms: Some(5),
        };
        assert_eq!(p(&serde_json::to_string(&r).unwrap()).unwrap(), r);
    }

    #[tokio::test]
    async fn socket_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let sh = shared(d.path());
        let path = d.path().join("ctl.sock");
        let l = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        assert!(bind(&path).unwrap_err().to_string().contains("already"));
        tokio::spawn(serve(l, sh.clone()));
        let path2 = path.clone();
        let v = tokio::task::spawn_blocking(move || {
            let t = Duration::from_secs(2);
            request(
                &path2,
                &Request::Metric {
                    name: "busy".into(),
                    value: 0.5,
                },
                t,
            )
            .unwrap();
            let e = request(
                &path2,
                &Request::Metric {
                    name: "busy".into(),
                    value: 2.0,
                },
                t,
            )
            .unwrap_err();
            assert!(e.to_string().contains("between 0 and 1"), "{e}");
            let v = request(
                &path2,
                &Request::Drain {
                    wait: false,
                    timeout_ms: None,
                },
                t,
            )
            .unwrap();
            assert_eq!(v["draining"], true);
            let e = request(
                &path2,
                &Request::Drain {
                    wait: true,
                    timeout_ms: Some(100),
                },
                t,
            )
            .unwrap_err();
            assert!(e.to_string().contains("acknowledged"), "{e}");
            request(&path2, &Request::Status {}, t).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(v["status"]["draining"], true);
        assert_eq!(v["status"]["agent"], "t");
        // Garbage gets an error reply naming the expected syntax, and the connection goes on.
        let mut s = UnixStream::connect(&path).await.unwrap();
        s.write_all(b"nonsense\n{\"cmd\":\"ready\"}\n")
            .await
            .unwrap();
        let mut r = tokio::io::BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).await.unwrap();
        assert!(
            line.contains("\"ok\":false") && line.contains("cmd"),
            "{line}"
        );
        line.clear();
        r.read_line(&mut line).await.unwrap();
        assert!(line.contains("\"draining\":false"), "{line}");
        drop(d);
        // A stale socket file is replaced.
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(bind(&stale).is_ok());
    }
}
