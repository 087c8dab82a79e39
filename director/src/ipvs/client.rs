//! Blocking client of the kernel's IPVS generic-netlink family in this process's network
//! namespace. neli provides the socket and the typed controller exchange that resolves the
//! "IPVS" family id; the IPVS messages themselves are framed and decoded by
//! `cluster_core::ipvs::codec`, which is what lets [`IpvsClient::execute`] pack hundreds of
//! requests into one sendmsg and match their acks by sequence number.

use std::fmt::Display;
use std::io::{self, Cursor};
use std::mem::size_of;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use cluster_core::ipvs::codec::{
    self, parse_messages, DecodeError, Payload, Problem, Request, FAMILY_NAME,
};
use cluster_core::ipvs::{
    DaemonState, KDaemon, KDest, KDestEntry, KInfo, KService, KServiceEntry, KTimeouts,
};
use cluster_core::model::ServiceKey;
use neli::consts::genl::{CtrlAttr, CtrlCmd};
use neli::consts::nl::{GenlId, NlmF};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::socket::NlSocket;
use neli::types::{GenlBuffer, NlBuffer};
use neli::utils::Groups;
use neli::{FromBytesWithInput, ToBytes};

/// Receive buffer per recv: the kernel sizes dump messages after the largest recv buffer seen,
/// capped at 32 KiB, so 64 KiB never truncates.
const RECV_BUF_LEN: usize = 64 * 1024;
/// Bytes of requests per sendmsg; netlink refuses a sendmsg larger than the socket's send buffer
/// (EMSGSIZE), whose default is about 208 KiB.
const SEND_BATCH_BYTES: usize = 64 * 1024;
/// Socket receive buffer asked for (the kernel doubles it). Every request of a batch is answered
/// before sendmsg returns, so all of a batch's acks must fit at once or the kernel drops them.
const RCVBUF_WANT: libc::c_int = 8 * 1024 * 1024;
/// Receive-buffer charge of one queued ack (an skb's truesize is ~1 KiB), with margin.
const ACK_COST: usize = 2048;
const MIN_WINDOW: usize = 16;
const MAX_WINDOW: usize = 4096;
/// A kernel that does not answer within this is treated as an I/O failure, not waited on forever.
const RECV_TIMEOUT_SECS: libc::time_t = 60;
/// Version of the generic-netlink controller's messages.
const CTRL_VERSION: u8 = 2;

/// Why an IPVS operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The kernel has no IPVS (the "IPVS" generic-netlink family does not exist).
    #[error("IPVS is not available: modprobe ip_vs")]
    Unavailable,
    /// The kernel refused the operation.
    #[error("{op}: {}", io::Error::from_raw_os_error(*errno))]
    Kernel { op: String, errno: i32 },
    #[error("netlink socket: {0}")]
    Io(#[from] io::Error),
    #[error("malformed IPVS reply: {0}")]
    Decode(#[from] DecodeError),
}

impl IpvsError {
    /// The kernel's errno, when the failure has one (EEXIST, ESRCH, ENOENT for a missing
    /// scheduler module, ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            IpvsError::Io(e) => e.raw_os_error(),
            IpvsError::Unavailable | IpvsError::Decode(_) => None,
        }
    }
}

/// One generic-netlink socket bound to the IPVS family.
pub struct IpvsClient {
    sock: NlSocket,
    family: u16,
    pid: u32,
    seq: u32,
    rbuf: Vec<u8>,
    sbuf: Vec<u8>,
    /// Most requests per sendmsg, from the receive buffer the kernel granted.
    window: usize,
}

impl IpvsClient {
    /// Opens the socket and resolves the family (which autoloads ip_vs where modules can load).
    pub fn open() -> Result<IpvsClient, IpvsError> {
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())?;
        let pid = sock.pid()?;
        let mut c = IpvsClient {
            sock,
            family: 0,
            pid,
            seq: 0,
            rbuf: vec![0; RECV_BUF_LEN],
            sbuf: Vec::with_capacity(SEND_BATCH_BYTES + 4096),
            window: MIN_WINDOW,
        };
        let fd = c.sock.as_raw_fd();
        set_timeout(fd)?;
        c.family = c.resolve_family()?;
        // Error acks then carry only the request's header, not the whole request echoed back.
        // Best effort: without it they are just bigger.
        let _ = setsockopt_int(fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, 1);
        c.window = (grow_rcvbuf(fd) / ACK_COST).clamp(MIN_WINDOW, MAX_WINDOW);
        Ok(c)
    }

    /// The kernel's IPVS version and connection-table size.
    pub fn info(&mut self) -> Result<KInfo, IpvsError> {
        self.get_one(&Request::get_info(), codec::decode_info)
    }

    /// Every service in the namespace.
    pub fn services(&mut self) -> Result<Vec<KServiceEntry>, IpvsError> {
        self.dump(&Request::dump_services(), codec::decode_service)
    }

    /// One service, `None` when it does not exist.
    pub fn service(&mut self, key: &ServiceKey) -> Result<Option<KServiceEntry>, IpvsError> {
        match self.get_one(&Request::get_service(key), codec::decode_service) {
            Ok(e) => Ok(Some(e)),
            Err(IpvsError::Kernel { errno, .. }) if errno == libc::ESRCH => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn new_service(&mut self, svc: &KService) -> Result<(), IpvsError> {
        self.run(&Request::new_service(svc))
    }

    pub fn set_service(&mut self, svc: &KService) -> Result<(), IpvsError> {
        self.run(&Request::set_service(svc))
    }

    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        self.run(&Request::del_service(key))
    }

    /// The destinations of one service (empty when the service does not exist: the kernel's
    /// dump does not tell the two apart).
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<KDestEntry>, IpvsError> {
        let family = key.family();
        self.dump(&Request::dump_dests(key), |a| codec::decode_dest(a, family))
    }

    pub fn new_dest(&mut self, key: &ServiceKey, d: &KDest) -> Result<(), IpvsError> {
        self.run(&Request::new_dest(key, d))
    }

    pub fn set_dest(&mut self, key: &ServiceKey, d: &KDest) -> Result<(), IpvsError> {
        self.run(&Request::set_dest(key, d))
    }

    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), IpvsError> {
        self.run(&Request::del_dest(key, addr, port))
    }

    /// The running sync daemons (none, master, backup or both).
    pub fn daemons(&mut self) -> Result<Vec<KDaemon>, IpvsError> {
        self.dump(&Request::dump_daemons(), codec::decode_daemons)
    }

    pub fn new_daemon(&mut self, d: &KDaemon) -> Result<(), IpvsError> {
        self.run(&Request::new_daemon(d))
    }

    pub fn del_daemon(&mut self, state: DaemonState) -> Result<(), IpvsError> {
        self.run(&Request::del_daemon(state))
    }

    pub fn timeouts(&mut self) -> Result<KTimeouts, IpvsError> {
        self.get_one(&Request::get_config(), codec::decode_config)
    }

    /// Sets the connection timeouts; a 0 leaves that one unchanged.
    pub fn set_timeouts(&mut self, t: &KTimeouts) -> Result<(), IpvsError> {
        self.run(&Request::set_config(t))
    }

    /// Deletes every service and destination in the namespace.
    pub fn flush(&mut self) -> Result<(), IpvsError> {
        self.run(&Request::flush())
    }

    /// Zeroes the counters of one service, or of all.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), IpvsError> {
        self.run(&Request::zero(key))
    }

    /// Runs many requests, pipelined: they go out packed into few sendmsg calls (each request
    /// with NLM_F_ACK and its own sequence number) and their acks are matched back by sequence
    /// number. Returns one result per request, in order; a failure does not stop the others.
    /// Dump requests run one at a time (a socket holds one dump in progress) and their data is
    /// discarded.
    pub fn execute(&mut self, reqs: &[Request]) -> Vec<Result<(), IpvsError>> {
        let mut results: Vec<Option<Result<(), IpvsError>>> = Vec::with_capacity(reqs.len());
        let mut i = 0;
        while i < reqs.len() {
            if reqs[i].dump {
                results.push(Some(self.run(&reqs[i])));
                i += 1;
                continue;
            }
            let start = i;
            let first_seq = self.seq.wrapping_add(1);
            self.sbuf.clear();
            while i < reqs.len()
                && !reqs[i].dump
                && i - start < self.window
                && (i == start || self.sbuf.len() + framed_len(&reqs[i]) <= SEND_BATCH_BYTES)
            {
                let seq = self.next_seq();
                codec::frame_into(&mut self.sbuf, &reqs[i], self.family, seq, self.pid);
                i += 1;
            }
            results.extend((start..i).map(|_| None));
            let batch = &reqs[start..i];
            let slots = &mut results[start..i];
            match send(&self.sock, &self.sbuf) {
                Ok(()) => collect_acks(&self.sock, &mut self.rbuf, batch, first_seq, slots),
                // Nothing of this batch reached the kernel.
                Err(e) => {
                    for (slot, req) in slots.iter_mut().zip(batch) {
                        *slot = Some(Err(lost(req, "not sent", &e)));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every request of a sent batch gets a result"))
            .collect()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Asks the generic-netlink controller for the IPVS family id (CTRL_CMD_GETFAMILY).
    fn resolve_family(&mut self) -> Result<u16, IpvsError> {
        let seq = self.next_seq();
        let name = NlattrBuilder::default()
            .nla_type(
                AttrTypeBuilder::default()
                    .nla_type(CtrlAttr::FamilyName)
                    .build()
                    .map_err(neli_err)?,
            )
            .nla_payload(FAMILY_NAME)
            .build()
            .map_err(neli_err)?;
        let genl = GenlmsghdrBuilder::default()
            .cmd(CtrlCmd::Getfamily)
            .version(CTRL_VERSION)
            .attrs(std::iter::once(name).collect::<GenlBuffer<_, _>>())
            .build()
            .map_err(neli_err)?;
        let msg = NlmsghdrBuilder::default()
            .nl_type(GenlId::Ctrl)
            .nl_flags(NlmF::REQUEST | NlmF::ACK)
            .nl_seq(seq)
            .nl_pid(self.pid)
            .nl_payload(NlPayload::Payload(genl))
            .build()
            .map_err(neli_err)?;
        let mut out = Cursor::new(Vec::new());
        msg.to_bytes(&mut out).map_err(neli_err)?;
        send(&self.sock, out.get_ref())?;

        let mut family = None;
        loop {
            let n = recv(&self.sock, &mut self.rbuf, Msg::empty())?;
            let msgs = NlBuffer::<GenlId, Genlmsghdr<CtrlCmd, CtrlAttr>>::from_bytes_with_input(
                &mut Cursor::new(&self.rbuf[..n]),
                n,
            )
            .map_err(neli_err)?;
            for m in msgs {
                if *m.nl_seq() != seq {
                    continue;
                }
                match m.nl_payload() {
                    NlPayload::Payload(p) => {
                        let id = p
                            .attrs()
                            .get_attr_handle()
                            .get_attr_payload_as::<u16>(CtrlAttr::FamilyId);
                        family = id.ok().or(family);
                    }
                    NlPayload::Err(e) => {
                        let errno = -*e.error();
                        return Err(if errno == libc::ENOENT {
                            IpvsError::Unavailable
                        } else {
                            IpvsError::Kernel {
                                op: format!("resolve generic netlink family {FAMILY_NAME}"),
                                errno,
                            }
                        });
                    }
                    NlPayload::Ack(_) => {
                        return family.ok_or(IpvsError::Decode(DecodeError {
                            attr: "CTRL_ATTR_FAMILY_ID",
                            problem: Problem::Missing,
                        }))
                    }
                    _ => {}
                }
            }
        }
    }

    /// One request whose answer is an ack (or an error); any data is ignored.
    fn run(&mut self, req: &Request) -> Result<(), IpvsError> {
        self.transact(req, |_| Ok(()))
    }

    /// A non-dump request answered by exactly one data message, then its ack.
    fn get_one<T>(
        &mut self,
        req: &Request,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<T, IpvsError> {
        let mut out = None;
        self.transact(req, |a| {
            out = Some(decode(a)?);
            Ok(())
        })?;
        out.ok_or(IpvsError::Decode(DecodeError {
            attr: "reply",
            problem: Problem::Missing,
        }))
    }

    fn dump<T>(
        &mut self,
        req: &Request,
        decode: impl Fn(&[u8]) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, IpvsError> {
        let mut out = Vec::new();
        self.transact(req, |a| {
            out.push(decode(a)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Sends one request and feeds each data message's attributes to `on_data` until the final
    /// answer: the ack (NLMSG_ERROR 0) of a plain request, NLMSG_DONE of a dump (which may take
    /// many recv calls), or an error. A decode failure is reported only after the final answer,
    /// so that a dump is always read to its end.
    fn transact(
        &mut self,
        req: &Request,
        mut on_data: impl FnMut(&[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), IpvsError> {
        let seq = self.next_seq();
        self.sbuf.clear();
        codec::frame_into(&mut self.sbuf, req, self.family, seq, self.pid);
        send(&self.sock, &self.sbuf)?;
        let mut decode_err = None;
        loop {
            let n = recv(&self.sock, &mut self.rbuf, Msg::empty())?;
            for m in parse_messages(&self.rbuf[..n]) {
                let m = m?;
                // Leftovers of an earlier, abandoned request.
                if m.seq != seq {
                    continue;
                }
                match m.payload {
                    Payload::Genl { attrs, .. } => {
                        if decode_err.is_none() {
                            decode_err = on_data(attrs).err();
                        }
                    }
                    Payload::Ack | Payload::Done(0) => {
                        return decode_err.map_or(Ok(()), |e| Err(e.into()))
                    }
                    Payload::Error(errno) | Payload::Done(errno) => {
                        return Err(IpvsError::Kernel {
                            op: req.describe(),
                            errno,
                        })
                    }
                    Payload::Other => {}
                }
            }
        }
    }
}

/// Bytes `req` takes once framed (headers + attributes, 4-aligned).
fn framed_len(req: &Request) -> usize {
    codec::align4(codec::nl::NLMSG_HDRLEN + codec::nl::GENL_HDRLEN + req.attrs.len())
}

/// Reads the acks of one sent batch into `slots` (the batch's sequence numbers start at
/// `first_seq`). Data replies (a get inside a batch) are skipped: their ack follows them.
fn collect_acks(
    sock: &NlSocket,
    rbuf: &mut [u8],
    batch: &[Request],
    first_seq: u32,
    slots: &mut [Option<Result<(), IpvsError>>],
) {
    let mut pending = slots.len();
    // After the kernel reports dropped acks (ENOBUFS), read only what is already queued.
    let mut flags = Msg::empty();
    while pending > 0 {
        let n = match recv(sock, rbuf, flags) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && flags.is_empty() => {
                flags = Msg::DONTWAIT;
                continue;
            }
            Err(e) => {
                let e = if flags.is_empty() {
                    e
                } else {
                    io::Error::from_raw_os_error(libc::ENOBUFS)
                };
                for (slot, req) in slots.iter_mut().zip(batch) {
                    if slot.is_none() {
                        *slot = Some(Err(lost(req, "no answer from the kernel", &e)));
                    }
                }
                return;
            }
        };
        pending -= record_answers(&rbuf[..n], batch, first_seq, slots);
    }
}

/// Fills the slots of the requests answered in one received buffer and returns how many were
/// filled. Messages of other sequence numbers (stale answers of an abandoned request) and
/// repeated answers are ignored.
fn record_answers(
    buf: &[u8],
    batch: &[Request],
    first_seq: u32,
    slots: &mut [Option<Result<(), IpvsError>>],
) -> usize {
    let mut filled = 0;
    for m in parse_messages(buf).map_while(Result::ok) {
        let idx = m.seq.wrapping_sub(first_seq) as usize;
        if idx >= slots.len() || slots[idx].is_some() {
            continue;
        }
        let result = match m.payload {
            Payload::Ack | Payload::Done(0) => Ok(()),
            Payload::Error(errno) | Payload::Done(errno) => Err(IpvsError::Kernel {
                op: batch[idx].describe(),
                errno,
            }),
            Payload::Genl { .. } | Payload::Other => continue,
        };
        slots[idx] = Some(result);
        filled += 1;
    }
    filled
}

/// The error of a request that was never sent or whose answer never came.
fn lost(req: &Request, what: &str, e: &io::Error) -> IpvsError {
    IpvsError::Io(io::Error::new(
        e.kind(),
        format!("{}: {what} ({e})", req.describe()),
    ))
}

fn neli_err(e: impl Display) -> IpvsError {
    IpvsError::Io(io::Error::other(format!("generic netlink controller: {e}")))
}

fn send(sock: &NlSocket, buf: &[u8]) -> io::Result<()> {
    loop {
        match sock.send(buf, Msg::empty()) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One datagram (one or more netlink messages). MSG_TRUNC makes an oversized one detectable.
fn recv(sock: &NlSocket, buf: &mut [u8], flags: Msg) -> io::Result<usize> {
    loop {
        match sock.recv(&mut *buf, flags | Msg::TRUNC) {
            Ok((n, _)) if n > buf.len() => {
                return Err(io::Error::other(format!(
                    "netlink message of {n} bytes truncated to {}",
                    buf.len()
                )))
            }
            Ok((n, _)) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && flags.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer from the kernel within {RECV_TIMEOUT_SECS} s"),
                ))
            }
            Err(e) => return Err(e),
        }
    }
}

fn setsockopt_int(
    fd: libc::c_int,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `v` outlives the call and the length matches its type.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &v as *const libc::c_int as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_timeout(fd: libc::c_int) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: RECV_TIMEOUT_SECS,
        tv_usec: 0,
    };
    // SAFETY: `tv` outlives the call and the length matches its type.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Enlarges the receive buffer and returns the size granted. SO_RCVBUFFORCE ignores rmem_max but
/// needs CAP_NET_ADMIN, which every IPVS command needs anyway; SO_RCVBUF is the fallback.
fn grow_rcvbuf(fd: libc::c_int) -> usize {
    if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF_WANT).is_err() {
        let _ = setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF_WANT);
    }
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` outlive the call and `len` is the size of `v`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 && v > 0 {
        v as usize
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts() {
        assert_eq!(
            IpvsError::Unavailable.to_string(),
            "IPVS is not available: modprobe ip_vs"
        );
        let e = IpvsError::Kernel {
            op: "new service tcp/10.0.0.1:80".into(),
            errno: libc::EEXIST,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "new service tcp/10.0.0.1:80: {}",
                io::Error::from_raw_os_error(libc::EEXIST)
            )
        );
        assert_eq!(e.errno(), Some(libc::EEXIST));
        assert_eq!(IpvsError::Unavailable.errno(), None);
        assert_eq!(
            IpvsError::Io(io::Error::from_raw_os_error(libc::ENOBUFS)).errno(),
            Some(libc::ENOBUFS)
        );
    }

    #[test]
    fn framed_len_matches_the_framer() {
        let key: ServiceKey = "tcp/10.0.0.1:80".parse().unwrap();
        for req in [
            Request::flush(),
            Request::del_service(&key),
            Request::new_daemon(&KDaemon {
                state: DaemonState::Master,
                interface: "eth0".into(),
                syncid: 1,
                maxlen: None,
                group: None,
                port: None,
                ttl: None,
            }),
        ] {
            assert_eq!(framed_len(&req), codec::frame(&req, 0x20, 1, 0).len());
        }
    }

    fn nlmsg(ty: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    fn ack(seq: u32, err: i32) -> Vec<u8> {
        nlmsg(2, seq, &[err.to_ne_bytes().as_slice(), &[0u8; 16]].concat())
    }

    #[test]
    fn answers_are_matched_by_sequence_number() {
        let key: ServiceKey = "tcp/10.0.0.1:80".parse().unwrap();
        let batch = vec![
            Request::del_service(&key),
            Request::get_info(),
            Request::flush(),
            Request::zero(Some(&key)),
        ];
        // Sequence numbers wrap inside the batch: u32::MAX, 0, 1, 2.
        let first = u32::MAX;
        let mut slots: Vec<Option<Result<(), IpvsError>>> = (0..4).map(|_| None).collect();
        let buf = [
            ack(first.wrapping_sub(1), 0), // stale: an earlier request
            ack(1, 0),                     // flush, out of order
            ack(first, -libc::ESRCH),      // del service
            nlmsg(0x20, 0, &[codec::cmd::SET_INFO, 1, 0, 0]), // get info's data reply
            ack(1, -libc::EIO),            // repeated answer: ignored
        ]
        .concat();
        assert_eq!(record_answers(&buf, &batch, first, &mut slots), 2);
        assert!(slots[1].is_none() && slots[3].is_none());
        assert!(matches!(slots[2], Some(Ok(()))));
        match &slots[0] {
            Some(Err(e)) => {
                assert_eq!(e.errno(), Some(libc::ESRCH));
                assert!(e.to_string().starts_with("del service tcp/10.0.0.1:80: "));
            }
            other => panic!("{other:?}"),
        }
        let rest = [ack(0, 0), ack(2, -libc::ESRCH)].concat();
        assert_eq!(record_answers(&rest, &batch, first, &mut slots), 2);
        assert!(matches!(slots[1], Some(Ok(()))));
        assert_eq!(
            slots[3].as_ref().unwrap().as_ref().unwrap_err().to_string(),
            format!(
                "zero tcp/10.0.0.1:80: {}",
                io::Error::from_raw_os_error(libc::ESRCH)
            )
        );
        // A truncated buffer yields what precedes the damage.
        let mut slots: Vec<Option<Result<(), IpvsError>>> = (0..4).map(|_| None).collect();
        let damaged = [ack(first, 0), ack(0, 0)].concat();
        assert_eq!(
            record_answers(&damaged[..damaged.len() - 3], &batch, first, &mut slots),
            1
        );
    }

    /// Without IPVS in the kernel (this development host) opening fails with the exact text;
    /// with it, reading the version works. Either way nothing is changed.
    #[test]
    fn open_reports_unavailable_or_reads_info() {
        match IpvsClient::open() {
            Ok(mut c) => {
                let info = c.info().expect("GET_INFO");
                assert_eq!(info.version >> 16, 1);
            }
            Err(IpvsError::Unavailable) => {}
            // No generic netlink at all (a restricted sandbox): nothing to check here.
            Err(IpvsError::Io(_)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
}
