//! Netlink framing: a request as one nlmsghdr + genlmsghdr message (so many can be pipelined
//! through one socket), and the received buffer split back into messages (data, ACK, error, done).

use super::error::{DecodeError, Problem};
use super::request::Request;
use super::uapi::{align4, nl, FAMILY_VERSION};

/// Appends `req` as one netlink message: nlmsghdr (16 bytes) + genlmsghdr (4 bytes) + attributes.
/// Non-dump requests ask for an ACK so that every request gets exactly one final answer (an ACK
/// or an error) that can be matched by sequence number; dumps end with NLMSG_DONE instead.
pub fn frame_into(out: &mut Vec<u8>, req: &Request, family_id: u16, seq: u32, pid: u32) {
    let len = nl::NLMSG_HDRLEN + nl::GENL_HDRLEN + req.attrs.len();
    let flags = nl::NLM_F_REQUEST
        | if req.dump {
            nl::NLM_F_DUMP
        } else {
            nl::NLM_F_ACK
        };
    out.reserve(align4(len));
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&family_id.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&pid.to_ne_bytes());
    out.extend_from_slice(&[req.cmd, FAMILY_VERSION, 0, 0]);
    out.extend_from_slice(&req.attrs);
    out.resize(out.len() + align4(len) - len, 0);
}

/// `req` as one netlink message (see [`frame_into`]).
pub fn frame(req: &Request, family_id: u16, seq: u32, pid: u32) -> Vec<u8> {
    let mut out = Vec::new();
    frame_into(&mut out, req, family_id, seq, pid);
    out
}

/// What one received netlink message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// A generic-netlink message (the family's reply): command and attribute bytes.
    Genl { cmd: u8, attrs: &'a [u8] },
    /// NLMSG_ERROR with error 0: the request with this sequence number succeeded.
    Ack,
    /// NLMSG_ERROR: the request failed with this (positive) errno.
    Error(i32),
    /// NLMSG_DONE: the end of a dump; non-zero when the dump failed with that (positive) errno.
    Done(i32),
    /// NLMSG_NOOP, NLMSG_OVERRUN and reserved control types: nothing to act on.
    Other,
}

/// One received netlink message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMessage<'a> {
    pub msg_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    pub payload: Payload<'a>,
}

/// Iterates the netlink messages of one receive buffer; a malformed header ends it with an error.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// The messages in `buf` (the bytes of one recv).
pub fn parse_messages(buf: &[u8]) -> Messages<'_> {
    Messages { rest: buf }
}

fn read_i32(p: &[u8]) -> Option<i32> {
    Some(i32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<NlMessage<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        if rest.len() < nl::NLMSG_HDRLEN {
            return Some(Err(DecodeError::new(
                "nlmsghdr",
                Problem::Truncated {
                    need: nl::NLMSG_HDRLEN,
                    have: rest.len(),
                },
            )));
        }
        let word = |i: usize| u32::from_ne_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let len = word(0) as usize;
        if len < nl::NLMSG_HDRLEN || len > rest.len() {
            return Some(Err(DecodeError::new(
                "nlmsghdr",
                Problem::Truncated {
                    need: len.max(nl::NLMSG_HDRLEN),
                    have: rest.len(),
                },
            )));
        }
        let msg_type = u16::from_ne_bytes([rest[4], rest[5]]);
        let flags = u16::from_ne_bytes([rest[6], rest[7]]);
        let seq = word(8);
        let pid = word(12);
        let body = &rest[nl::NLMSG_HDRLEN..len];
        self.rest = &rest[align4(len).min(rest.len())..];
        let payload = match msg_type {
            nl::NLMSG_ERROR => match read_i32(body) {
                Some(0) => Payload::Ack,
                Some(e) => Payload::Error(e.saturating_neg()),
                None => {
                    return Some(Err(DecodeError::new(
                        "nlmsgerr",
                        Problem::Truncated {
                            need: 4,
                            have: body.len(),
                        },
                    )))
                }
            },
            // Some families end dumps with an empty DONE.
            nl::NLMSG_DONE => Payload::Done(read_i32(body).unwrap_or(0).saturating_neg()),
            t if t >= nl::NLMSG_MIN_TYPE => {
                if body.len() < nl::GENL_HDRLEN {
                    return Some(Err(DecodeError::new(
                        "genlmsghdr",
                        Problem::Truncated {
                            need: nl::GENL_HDRLEN,
                            have: body.len(),
                        },
                    )));
                }
                Payload::Genl {
                    cmd: body[0],
                    attrs: &body[nl::GENL_HDRLEN..],
                }
            }
            _ => Payload::Other,
        };
        Some(Ok(NlMessage {
            msg_type,
            flags,
            seq,
            pid,
            payload,
        }))
    }
}
