//! Value readers: the words after a keyword to typed values (numbers, timers, addresses,
//! forwarding methods, status ranges, address ranges, script words). A value that cannot be
//! read is an [`Invalid`] naming the keyword and the value, which the mapper turns into a
//! warning.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cluster_core::model::{Family, Forward, RealServer, TunnelCsum, TunnelType};
use ipnet::IpNet;

/// Addresses one virtual_server_group range may expand to.
const MAX_RANGE: u128 = 256;

/// A value that cannot be read; the message names the keyword (or what stands for it) and the
/// value as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    /// `what` has nothing after it, or lacks a part (`needs` says which).
    #[error("{what} needs {needs}")]
    Missing { what: String, needs: &'static str },
    #[error("{kw} takes one value, not {got:?}")]
    NotOne { kw: String, got: String },
    #[error("{kw} {v:?} is not a number in range")]
    Number { kw: String, v: String },
    #[error("{kw} {v:?} is not a number of seconds")]
    Seconds { kw: String, v: String },
    #[error("{kw} {v:?} is not in 0..4000000 seconds")]
    SecondsRange { kw: String, v: String },
    #[error("{kw} {v:?} is not a boolean (on, off, true, false, yes, no)")]
    Boolean { kw: String, v: String },
    #[error("{kw}: {v:?} is not an IP address")]
    Address { kw: String, v: String },
    #[error("{kw}: port {v:?} is not a number in 0..=65535")]
    Port { kw: String, v: String },
    #[error("{kw} takes ADDRESS [PORT], not {got:?}")]
    Endpoint { kw: String, got: String },
    #[error("{kw} {v:?} is not NAT, DR or TUN")]
    Method { kw: String, v: String },
    /// A word that does not belong where it stands; `what` is the keyword and what precedes.
    #[error("{what}: unexpected {got:?}")]
    Unexpected { what: String, got: String },
    #[error("{kw} {v:?} is not inet or inet6")]
    FamilyWord { kw: String, v: String },
    /// A word the model refuses (scheduler, protocol, tunnel type, ...), with its message.
    #[error("{what}: {message}")]
    Model { what: String, message: String },
    #[error("{v:?} is not an address, range (A-B) or prefix (A/nn)")]
    Range { v: String },
    #[error("{v:?} mixes IPv4 and IPv6")]
    RangeFamilies { v: String },
    #[error("{v:?}: the range ends before it starts")]
    RangeBackwards { v: String },
    #[error("{v:?} holds {count} addresses; at most {limit} are expanded")]
    RangeTooLong { v: String, count: u128, limit: u128 },
    /// A virtual_server_group entry of another shape.
    #[error("`{0}` is not ADDRESS [PORT] or fwmark N")]
    GroupEntry(String),
    /// An fwmark the CLI's own reader refuses (`prefix` names where it stands, may be empty).
    #[error("{prefix}{message}")]
    Fwmark {
        prefix: &'static str,
        message: String,
    },
}

/// `what` needs `needs`.
pub(super) fn missing(what: impl Into<String>, needs: &'static str) -> Invalid {
    Invalid::Missing {
        what: what.into(),
        needs,
    }
}

/// A refusal by the model's own parser of `what`, as its message reads.
pub(super) fn model(what: impl Into<String>, e: impl std::fmt::Display) -> Invalid {
    Invalid::Model {
        what: what.into(),
        message: e.to_string(),
    }
}

/// A forwarding method with its tunnel settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Method {
    pub forward: Forward,
    pub tunnel_type: Option<TunnelType>,
    pub tunnel_port: Option<u16>,
    pub tunnel_csum: Option<TunnelCsum>,
}

impl Method {
    pub fn nat() -> Method {
        Method {
            forward: Forward::Masq,
            ..Method::default()
        }
    }

    pub fn apply(&self, r: &mut RealServer) {
        r.forward = self.forward;
        r.tunnel_type = self.tunnel_type;
        r.tunnel_port = self.tunnel_port;
        r.tunnel_csum = self.tunnel_csum;
    }
}

/// The one value after `kw`.
pub(super) fn one<'a>(kw: &str, args: &'a [String]) -> Result<&'a str, Invalid> {
    match args {
        [v] => Ok(v),
        [] => Err(missing(kw, "a value")),
        _ => Err(not_one(kw, args)),
    }
}

fn not_one(kw: &str, args: &[String]) -> Invalid {
    Invalid::NotOne {
        kw: kw.into(),
        got: args.join(" "),
    }
}

pub(super) fn number<T: std::str::FromStr>(kw: &str, v: &str) -> Result<T, Invalid> {
    v.parse().map_err(|_| Invalid::Number {
        kw: kw.into(),
        v: v.into(),
    })
}

/// Seconds with fractions → milliseconds.
pub(super) fn timer(kw: &str, v: &str) -> Result<u32, Invalid> {
    let s: f64 = v.parse().map_err(|_| Invalid::Seconds {
        kw: kw.into(),
        v: v.into(),
    })?;
    if !s.is_finite() || !(0.0..=4_000_000.0).contains(&s) {
        return Err(Invalid::SecondsRange {
            kw: kw.into(),
            v: v.into(),
        });
    }
    Ok((s * 1000.0).round() as u32)
}

/// `[<BOOL>]`: no value means on.
pub(super) fn boolean(kw: &str, args: &[String]) -> Result<bool, Invalid> {
    match args {
        [] => Ok(true),
        [v] => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            _ => Err(Invalid::Boolean {
                kw: kw.into(),
                v: v.clone(),
            }),
        },
        _ => Err(not_one(kw, args)),
    }
}

/// An IP address, IPv6 possibly in brackets.
pub(super) fn address(kw: &str, v: &str) -> Result<IpAddr, Invalid> {
    let t = v
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(v);
    t.parse().map_err(|_| Invalid::Address {
        kw: kw.into(),
        v: v.into(),
    })
}

pub(super) fn port(kw: &str, v: &str) -> Result<u16, Invalid> {
    v.parse().map_err(|_| Invalid::Port {
        kw: kw.into(),
        v: v.into(),
    })
}

/// `ADDR [PORT]`.
pub(super) fn endpoint(kw: &str, args: &[String]) -> Result<(IpAddr, Option<u16>), Invalid> {
    match args {
        [a] => Ok((address(kw, a)?, None)),
        [a, p] => Ok((address(kw, a)?, Some(port(kw, p)?))),
        [] => Err(missing(kw, "an address")),
        _ => Err(Invalid::Endpoint {
            kw: kw.into(),
            got: args.join(" "),
        }),
    }
}

/// `NAT | DR | TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`.
pub(super) fn method(kw: &str, args: &[String]) -> Result<Method, Invalid> {
    let Some(first) = args.first() else {
        return Err(missing(kw, "NAT, DR or TUN"));
    };
    let forward = match first.to_ascii_uppercase().as_str() {
        "NAT" => Forward::Masq,
        "DR" => Forward::Dr,
        "TUN" => Forward::Tunnel,
        _ => {
            return Err(Invalid::Method {
                kw: kw.into(),
                v: first.clone(),
            })
        }
    };
    let mut m = Method {
        forward,
        ..Method::default()
    };
    let rest = &args[1..];
    if forward != Forward::Tunnel {
        if !rest.is_empty() {
            return Err(Invalid::Unexpected {
                what: format!("{kw} {first}"),
                got: rest.join(" "),
            });
        }
        return Ok(m);
    }
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "type" => {
                let t = rest
                    .get(i + 1)
                    .ok_or_else(|| missing(format!("{kw} TUN type"), "ipip, gue or gre"))?;
                m.tunnel_type = Some(t.parse().map_err(|e| model(format!("{kw} TUN type"), e))?);
                i += 2;
            }
            "port" => {
                let p = rest
                    .get(i + 1)
                    .ok_or_else(|| missing(format!("{kw} TUN port"), "a number"))?;
                m.tunnel_port = Some(port(kw, p)?);
                i += 2;
            }
            "nocsum" | "csum" | "remcsum" => {
                m.tunnel_csum = Some(rest[i].parse().map_err(|e| model(kw, e))?);
                i += 1;
            }
            other => {
                return Err(Invalid::Unexpected {
                    what: format!("{kw} TUN"),
                    got: other.into(),
                })
            }
        }
    }
    Ok(m)
}

/// `inet` or `inet6`.
pub(super) fn family_word(kw: &str, v: &str) -> Result<Family, Invalid> {
    match v {
        "inet" => Ok(Family::Ipv4),
        "inet6" => Ok(Family::Ipv6),
        _ => Err(Invalid::FamilyWord {
            kw: kw.into(),
            v: v.into(),
        }),
    }
}

/// Status codes and ranges (`200`, `200-299 301`) as one range if they join into one.
pub(super) fn status_range(codes: &[String]) -> Result<(String, Vec<String>), Invalid> {
    let mut ranges = Vec::new();
    for c in codes {
        let (lo, hi) =
            cluster_core::validate::parse_status_range(c).map_err(|e| model("status_code", e))?;
        ranges.push((lo, hi));
    }
    let mut sorted = ranges.clone();
    sorted.sort();
    let mut joined = sorted[0];
    let mut one_range = true;
    for (lo, hi) in &sorted[1..] {
        if *lo <= joined.1.saturating_add(1) {
            joined.1 = joined.1.max(*hi);
        } else {
            one_range = false;
        }
    }
    let fmt = |(lo, hi): (u16, u16)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        }
    };
    if one_range {
        return Ok((fmt(joined), Vec::new()));
    }
    Ok((fmt(ranges[0]), codes[1..].to_vec()))
}

/// keepalived's script words: whitespace separates, `'...'` and `"..."` group, `\` escapes.
pub(super) fn script_argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Replaces `addr` (as written, or canonical) in `arg` by `{address}` where it stands alone.
pub(super) fn substitute_address(arg: &str, written: &str, addr: &IpAddr) -> String {
    let canonical = addr.to_string();
    let mut forms = vec![written.to_string()];
    if canonical != written {
        forms.push(canonical);
    }
    let v6 = addr.is_ipv6();
    let inner = |c: char| c.is_ascii_hexdigit() || c == '.' || (v6 && c == ':');
    let mut out = arg.to_string();
    for f in forms {
        if f.is_empty() {
            continue;
        }
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&f) {
            let before = rest[..i].chars().next_back();
            let after = rest[i + f.len()..].chars().next();
            let alone = !before.is_some_and(|c| inner(c) || c.is_alphanumeric())
                && !after.is_some_and(|c| inner(c) || c.is_alphanumeric());
            result.push_str(&rest[..i]);
            result.push_str(if alone { "{address}" } else { &f });
            rest = &rest[i + f.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// `A`, `A-B` (B a whole address or the last octet / group), `A/nn`: the addresses, in order.
pub(super) fn range(v: &str) -> Result<Vec<IpAddr>, Invalid> {
    fn to_u128(a: IpAddr) -> u128 {
        match a {
            IpAddr::V4(a) => u32::from(a) as u128,
            IpAddr::V6(a) => u128::from(a),
        }
    }
    fn from_u128(v6: bool, n: u128) -> IpAddr {
        if v6 {
            IpAddr::V6(Ipv6Addr::from(n))
        } else {
            IpAddr::V4(Ipv4Addr::from(n as u32))
        }
    }
    let bad = || Invalid::Range { v: v.into() };
    let (first, last) = if let Some((a, b)) = v.split_once('-') {
        let a: IpAddr = a.parse().map_err(|_| bad())?;
        let b = match b.parse::<IpAddr>() {
            Ok(b) => b,
            Err(_) => {
                let start = to_u128(a);
                let (radix, bits) = if a.is_ipv6() { (16, 16) } else { (10, 8) };
                let low = u128::from_str_radix(b, radix).map_err(|_| bad())?;
                if low >= 1 << bits {
                    return Err(bad());
                }
                from_u128(a.is_ipv6(), (start & !((1u128 << bits) - 1)) | low)
            }
        };
        (a, b)
    } else if v.contains('/') {
        let n: IpNet = v.parse().map_err(|_| bad())?;
        (n.network(), n.broadcast())
    } else {
        let a: IpAddr = v.parse().map_err(|_| bad())?;
        (a, a)
    };
    if first.is_ipv6() != last.is_ipv6() {
        return Err(Invalid::RangeFamilies { v: v.into() });
    }
    let (lo, hi) = (to_u128(first), to_u128(last));
    if hi < lo {
        return Err(Invalid::RangeBackwards { v: v.into() });
    }
    if hi - lo >= MAX_RANGE {
        return Err(Invalid::RangeTooLong {
            v: v.into(),
            count: (hi - lo).saturating_add(1),
            limit: MAX_RANGE,
        });
    }
    Ok((lo..=hi).map(|n| from_u128(first.is_ipv6(), n)).collect())
}

/// A VIP group name from a vrrp_instance name: 1..=64 of A-Z a-z 0-9 - _ .
pub(super) fn group_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "vrrp".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_words_follow_keepalived() {
        assert_eq!(
            script_argv(r#"/bin/x ' a b' "c d" e\ f"#),
            vec!["/bin/x", " a b", "c d", "e f"]
        );
        assert_eq!(
            substitute_address(
                "10.0.0.1,10.0.0.10,x10.0.0.1",
                "10.0.0.1",
                &"10.0.0.1".parse().unwrap()
            ),
            "{address},10.0.0.10,x10.0.0.1"
        );
        assert_eq!(
            substitute_address(
                "[2001:db8::1]:80",
                "2001:DB8::1",
                &"2001:db8::1".parse().unwrap()
            ),
            "[{address}]:80"
        );
    }
}
