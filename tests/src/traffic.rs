//! Test traffic for the IPVS lab: a real-server program that says who it is over TCP and UDP, and
//! client helpers that count which real server answered and hold long-lived connections through a
//! VIP while checking that every one of them still works.
//!
//! Protocol: on a TCP connection the server first sends `NAME\n`, then answers every line `X` with
//! `NAME X\n`. A UDP datagram `X` gets the answer `NAME X`. The HTTP server answers every request
//! with `200 OK` and the body `NAME\n`, after the delay (milliseconds) written in its delay file,
//! if any: a slow handler the lab can switch on and off.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Serves `name` on the TCP and UDP ports given (all addresses), forever.
pub fn serve(name: &str, tcp: &[u16], udp: &[u16]) -> Result<()> {
    let mut threads = Vec::new();
    for &p in tcp {
        let l = TcpListener::bind(("::", p))
            .or_else(|_| TcpListener::bind(("0.0.0.0", p)))
            .with_context(|| format!("tcp port {p}"))?;
        let name = name.to_string();
        threads.push(std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let name = name.clone();
                std::thread::spawn(move || {
                    let _ = serve_conn(&name, s);
                });
            }
        }));
    }
    for &p in udp {
        let s = UdpSocket::bind(("::", p))
            .or_else(|_| UdpSocket::bind(("0.0.0.0", p)))
            .with_context(|| format!("udp port {p}"))?;
        let name = name.to_string();
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf) {
                let mut reply = format!("{name} ").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&reply, from);
            }
        }));
    }
    eprintln!("lab-tool: {name} serving tcp {tcp:?} udp {udp:?}");
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn serve_conn(name: &str, s: TcpStream) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut w = s.try_clone()?;
    w.write_all(format!("{name}\n").as_bytes())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        w.write_all(format!("{name} {}", line).as_bytes())?;
    }
}

/// Serves HTTP/1.0 on `port` forever, each answer delayed by the number of milliseconds in
/// `delay_file` (read per request; missing or empty = none).
pub fn serve_http(name: &str, port: u16, delay_file: Option<std::path::PathBuf>) -> Result<()> {
    let l = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .with_context(|| format!("http port {port}"))?;
    eprintln!("lab-tool: {name} serving http on {port}");
    for s in l.incoming().flatten() {
        let name = name.to_string();
        let delay_file = delay_file.clone();
        std::thread::spawn(move || {
            let delay = delay_file
                .and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|t| t.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let _ = http_answer(&name, s, Duration::from_millis(delay));
        });
    }
    Ok(())
}

fn http_answer(name: &str, s: TcpStream, delay: Duration) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Request line and headers, up to the blank line.
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    std::thread::sleep(delay);
    let body = format!("{name}\n");
    w.write_all(
        format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

/// One HTTP GET of `/` through `to`; the name in the answer's body.
pub fn http_name(to: SocketAddr, timeout: Duration) -> Result<String> {
    let mut s =
        TcpStream::connect_timeout(&to, timeout).with_context(|| format!("connect {to}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .with_context(|| format!("answer from {to}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("{to}: not an HTTP answer: {text:?}"))?;
    if !head.starts_with("HTTP/1.0 200") {
        bail!("{to}: {}", head.lines().next().unwrap_or(""));
    }
    Ok(body.trim().to_string())
}

/// Opens a TCP connection and returns the name the server announced.
pub fn tcp_hello(to: SocketAddr, timeout: Duration) -> Result<String> {
    let s = TcpStream::connect_timeout(&to, timeout).with_context(|| format!("connect {to}"))?;
    read_hello(s, to, timeout)
}

/// The name the server at `to` announces first on `s`.
fn read_hello(s: TcpStream, to: impl std::fmt::Display, timeout: Duration) -> Result<String> {
    s.set_read_timeout(Some(timeout))?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)
        .with_context(|| format!("hello from {to}"))?;
    let name = line.trim().to_string();
    if name.is_empty() {
        bail!("{to}: connection closed before the hello");
    }
    Ok(name)
}

/// `tcp_hello` from IPv4 source address `from`: a fresh source address has no old IPVS
/// connection entries, so the scheduler, not a reused client port, picks the real server.
pub fn tcp_hello_from(
    from: std::net::Ipv4Addr,
    to: std::net::SocketAddrV4,
    timeout: Duration,
) -> Result<String> {
    use std::os::fd::FromRawFd;
    let sin = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it is wrapped.
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("socket");
        }
        let s = TcpStream::from_raw_fd(fd);
        // Linux bounds a blocking connect by the send timeout.
        s.set_write_timeout(Some(timeout))?;
        let local = sin(from, 0);
        if libc::bind(fd, &local as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| format!("bind {from}"));
        }
        let remote = sin(*to.ip(), to.port());
        if libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("connect {to} from {from}"));
        }
        s
    };
    read_hello(s, to, timeout)
}

/// One UDP request; the name that answered.
pub fn udp_hello(to: SocketAddr, timeout: Duration) -> Result<String> {
    let bind: SocketAddr = if to.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let s = UdpSocket::bind(bind)?;
    s.set_read_timeout(Some(timeout))?;
    s.send_to(b"hi", to)?;
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).with_context(|| format!("udp {to}"))?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    text.split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("udp {to}: empty answer"))
}

/// `n` fresh connections (or datagrams); how many each real server answered, and failures.
pub fn spread(to: SocketAddr, n: usize, udp: bool) -> (BTreeMap<String, usize>, usize) {
    let mut seen = BTreeMap::new();
    let mut failed = 0;
    for _ in 0..n {
        let r = if udp {
            udp_hello(to, Duration::from_secs(2))
        } else {
            tcp_hello(to, Duration::from_secs(2))
        };
        match r {
            Ok(name) => *seen.entry(name).or_insert(0) += 1,
            Err(_) => failed += 1,
        }
    }
    (seen, failed)
}

/// A long-lived connection through the VIP.
pub struct Held {
    pub server: String,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    seq: u64,
}

impl Held {
    pub fn open(to: SocketAddr, timeout: Duration) -> Result<Held> {
        let s =
            TcpStream::connect_timeout(&to, timeout).with_context(|| format!("connect {to}"))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(timeout))?;
        let mut reader = BufReader::new(s.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let server = line.trim().to_string();
        if server.is_empty() {
            bail!("{to}: no hello");
        }
        Ok(Held {
            server,
            stream: s,
            reader,
            seq: 0,
        })
    }

    /// One request/answer round trip on the connection, within `timeout`.
    pub fn ping(&mut self, timeout: Duration) -> Result<()> {
        self.seq += 1;
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream
            .write_all(format!("ping{}\n", self.seq).as_bytes())?;
        let mut line = String::new();
        let n = self.reader.read_line(&mut line)?;
        if n == 0 {
            bail!("closed by the peer");
        }
        let want = format!("{} ping{}", self.server, self.seq);
        if line.trim() != want {
            bail!("answer {:?}, expected {want:?}", line.trim());
        }
        Ok(())
    }
}

/// What happened to held connections across an event.
#[derive(Debug, Default)]
pub struct HoldReport {
    pub total: usize,
    pub survived: usize,
    /// Longest time any connection went without a successful round trip.
    pub max_pause: Duration,
    pub errors: Vec<String>,
}

/// Pings every connection in turn until `until` returns true (checked between rounds), then keeps
/// going for `settle`. A round trip may take up to `ping_timeout` (TCP retransmits across a
/// takeover); a connection that fails once is dead and not tried again.
pub fn hold_through(
    conns: &mut [Held],
    ping_timeout: Duration,
    settle: Duration,
    mut until: impl FnMut() -> bool,
) -> HoldReport {
    let n = conns.len();
    let mut last_ok: Vec<Instant> = vec![Instant::now(); n];
    let mut errors: Vec<Option<String>> = vec![None; n];
    let mut max_pause = Duration::ZERO;
    let mut settle_from: Option<Instant> = None;
    loop {
        for (i, c) in conns.iter_mut().enumerate() {
            if errors[i].is_some() {
                continue;
            }
            match c.ping(ping_timeout) {
                Ok(()) => {
                    let now = Instant::now();
                    max_pause = max_pause.max(now - last_ok[i]);
                    last_ok[i] = now;
                }
                Err(e) => errors[i] = Some(format!("connection {i} to {}: {e:#}", c.server)),
            }
        }
        match settle_from {
            None if until() => settle_from = Some(Instant::now()),
            Some(t) if t.elapsed() >= settle => break,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let errors: Vec<String> = errors.into_iter().flatten().collect();
    HoldReport {
        total: n,
        survived: n - errors.len(),
        max_pause,
        errors,
    }
}

/// Reads everything a TCP peer sends until it closes (for small one-shot answers).
pub fn read_all(mut s: TcpStream) -> Result<String> {
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
