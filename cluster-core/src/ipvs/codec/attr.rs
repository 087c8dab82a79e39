//! Netlink attributes (TLVs): a writer that pads and nests, an iterator over a buffer's
//! attributes, and typed getters that check each payload's length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::Family;

use super::error::{DecodeError, Problem};
use super::uapi::{align4, nl};

/// Appends netlink attributes (host-order header, payload padded to 4 bytes) to a buffer.
#[derive(Debug, Default, Clone)]
pub struct AttrWriter {
    buf: Vec<u8>,
}

impl AttrWriter {
    pub fn new() -> AttrWriter {
        AttrWriter::default()
    }

    pub fn put(&mut self, ty: u16, payload: &[u8]) {
        let len = nl::NLA_HDRLEN + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    pub fn put_u8(&mut self, ty: u16, v: u8) {
        self.put(ty, &[v]);
    }

    pub fn put_u16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_ne_bytes());
    }

    /// Ports travel in network order.
    pub fn put_be16(&mut self, ty: u16, v: u16) {
        self.put(ty, &v.to_be_bytes());
    }

    pub fn put_u32(&mut self, ty: u16, v: u32) {
        self.put(ty, &v.to_ne_bytes());
    }

    pub fn put_u64(&mut self, ty: u16, v: u64) {
        self.put(ty, &v.to_ne_bytes());
    }

    /// A NUL-terminated string (the kernel's `NLA_NUL_STRING` policies require the NUL).
    pub fn put_str(&mut self, ty: u16, s: &str) {
        let mut payload = Vec::with_capacity(s.len() + 1);
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.put(ty, &payload);
    }

    /// A nested attribute whose children `f` writes. NLA_F_NESTED is set: the IPVS family parses
    /// with legacy (non-strict) validation, which masks the flag off, and strict parsers want it.
    pub fn nest(&mut self, ty: u16, f: impl FnOnce(&mut AttrWriter)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; nl::NLA_HDRLEN]);
        f(self);
        let len = self.buf.len() - start;
        debug_assert!(len <= u16::MAX as usize, "nested attribute over 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(ty | nl::NLA_F_NESTED).to_ne_bytes());
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }
}

/// Iterates the attributes of a buffer as `(type without flags, payload)`. A malformed header ends
/// the iteration with one error; `context` names the enclosing attribute in that error.
#[derive(Debug, Clone)]
pub struct Attrs<'a> {
    rest: &'a [u8],
    context: &'static str,
}

/// The attributes in `buf` (a genl message's payload after its header, or a nest's payload).
pub fn attrs<'a>(buf: &'a [u8], context: &'static str) -> Attrs<'a> {
    Attrs { rest: buf, context }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        if rest.len() < nl::NLA_HDRLEN {
            return Some(Err(DecodeError::new(
                self.context,
                Problem::Truncated {
                    need: nl::NLA_HDRLEN,
                    have: rest.len(),
                },
            )));
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & nl::NLA_TYPE_MASK;
        if len < nl::NLA_HDRLEN || len > rest.len() {
            return Some(Err(DecodeError::new(
                self.context,
                Problem::Truncated {
                    need: len.max(nl::NLA_HDRLEN),
                    have: rest.len(),
                },
            )));
        }
        // The last attribute of a message may omit its trailing padding.
        self.rest = &rest[align4(len).min(rest.len())..];
        Some(Ok((ty, &rest[nl::NLA_HDRLEN..len])))
    }
}

/// The payload of the first attribute of type `ty` (a nest, usually).
pub(super) fn find<'a>(
    buf: &'a [u8],
    ty: u16,
    name: &'static str,
    context: &'static str,
) -> Result<&'a [u8], DecodeError> {
    for a in attrs(buf, context) {
        let (t, p) = a?;
        if t == ty {
            return Ok(p);
        }
    }
    Err(DecodeError::missing(name))
}

pub(super) fn exact<const N: usize>(
    attr: &'static str,
    p: &[u8],
    expected: &'static str,
) -> Result<[u8; N], DecodeError> {
    p.try_into().map_err(|_| {
        DecodeError::new(
            attr,
            Problem::Length {
                got: p.len(),
                expected,
            },
        )
    })
}

pub fn get_u8(attr: &'static str, p: &[u8]) -> Result<u8, DecodeError> {
    Ok(exact::<1>(attr, p, "1 (u8)")?[0])
}

pub fn get_u16(attr: &'static str, p: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(exact(attr, p, "2 (u16)")?))
}

pub fn get_be16(attr: &'static str, p: &[u8]) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(exact(attr, p, "2 (be16)")?))
}

pub fn get_u32(attr: &'static str, p: &[u8]) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(exact(attr, p, "4 (u32)")?))
}

/// A counter that is u32 in the legacy STATS nest and u64 in STATS64 (and INBYTES/OUTBYTES are
/// u64 in both): the length tells.
pub fn get_uint(attr: &'static str, p: &[u8]) -> Result<u64, DecodeError> {
    match p.len() {
        4 => Ok(get_u32(attr, p)? as u64),
        8 => Ok(u64::from_ne_bytes(exact(attr, p, "8 (u64)")?)),
        got => Err(DecodeError::new(
            attr,
            Problem::Length {
                got,
                expected: "4 or 8",
            },
        )),
    }
}

/// A NUL-terminated (or unterminated) UTF-8 string.
pub fn get_str(attr: &'static str, p: &[u8]) -> Result<String, DecodeError> {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end])
        .map(str::to_owned)
        .map_err(|_| DecodeError::value(attr, "not UTF-8"))
}

/// An address in the kernel's 16-byte `union nf_inet_addr` (IPv4 in the first 4 bytes).
pub fn get_addr(attr: &'static str, p: &[u8], family: Family) -> Result<IpAddr, DecodeError> {
    match family {
        Family::Ipv4 if p.len() == 4 || p.len() == 16 => {
            Ok(IpAddr::V4(Ipv4Addr::new(p[0], p[1], p[2], p[3])))
        }
        Family::Ipv6 if p.len() == 16 => {
            let b: [u8; 16] = exact(attr, p, "16")?;
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        Family::Ipv4 => Err(DecodeError::new(
            attr,
            Problem::Length {
                got: p.len(),
                expected: "4 or 16 (IPv4)",
            },
        )),
        Family::Ipv6 => Err(DecodeError::new(
            attr,
            Problem::Length {
                got: p.len(),
                expected: "16 (IPv6)",
            },
        )),
    }
}
