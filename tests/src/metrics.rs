//! Scraping `/metrics` in tests: a minimal blocking HTTP/1.1 GET over a `TcpStream` and a parser
//! of the OpenMetrics text samples.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP response.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
}

/// `METHOD path` on `addr` with `Connection: close`; the whole response, de-chunked.
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<HttpReply> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad(format!("no end of headers in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("malformed chunked body".into()))?;
    }
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8(body).map_err(|e| bad(e.to_string()))?,
    })
}

/// `GET path` on `addr`.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
    http_request(addr, "GET", path)
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: the samples, and each family's TYPE.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    /// Parses OpenMetrics (or Prometheus) text; errors name the line.
    pub fn parse(text: &str) -> Result<Metrics, String> {
        let mut m = Metrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest
                    .split_once(' ')
                    .ok_or_else(|| format!("bad TYPE line {line:?}"))?;
                m.types.insert(name.to_string(), ty.to_string());
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            m.samples
                .push(parse_sample(line).ok_or_else(|| format!("bad sample line {line:?}"))?);
        }
        Ok(m)
    }

    /// The value of the sample `name` whose labels are exactly `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// Every sample named `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }
}

fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            r = r.trim_start_matches(',');
            if let Some(after) = r.strip_prefix('}') {
                break after;
            }
            let eq = r.find('=')?;
            let key = r[..eq].to_string();
            r = r[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            labels.insert(key, value);
            r = &r[end + 1..];
        }
    } else {
        rest
    };
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Scrapes `http://addr/metrics`: checks the status and the OpenMetrics content type, parses.
pub fn scrape(addr: SocketAddr) -> Result<Metrics, String> {
    let r = http_get(addr, "/metrics").map_err(|e| format!("GET http://{addr}/metrics: {e}"))?;
    if r.status != 200 {
        return Err(format!("GET http://{addr}/metrics: status {}", r.status));
    }
    let ct = r.header("content-type").unwrap_or_default();
    if !ct.starts_with("application/openmetrics-text") {
        return Err(format!(
            "GET http://{addr}/metrics: content type {ct:?}, expected OpenMetrics"
        ));
    }
    if !r.body.ends_with("# EOF\n") {
        return Err(format!(
            "GET http://{addr}/metrics: no # EOF at the end:\n{}",
            r.body
        ));
    }
    Metrics::parse(&r.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_samples_labels_and_types() {
        let m = Metrics::parse(
            "# HELP a_total x\n# TYPE a counter\na_total{k=\"v\\\"q\",z=\"1\"} 12\nb 1.5\nc{le=\"+Inf\"} +Inf\n# EOF\n",
        )
        .unwrap();
        assert_eq!(m.types["a"], "counter");
        assert_eq!(m.get("a_total", &[("z", "1"), ("k", "v\"q")]), Some(12.0));
        assert_eq!(m.get("a_total", &[("k", "v\"q")]), None);
        assert_eq!(m.get("b", &[]), Some(1.5));
        assert_eq!(m.get("c", &[("le", "+Inf")]), Some(f64::INFINITY));
        assert!(Metrics::parse("x{y=1} 2").is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
    }
}
