//! DNS checks: query over UDP, healthy on a NOERROR answer to our query.

use std::net::SocketAddr;

use cluster_core::health::ProbeResult;
use cluster_core::model::HealthCheck;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::checker::{network, Checker, Target};
use super::common::{udp_socket, CheckError};
use super::udp::MAX_DATAGRAM;

pub struct Dns;

impl Checker for Dns {
    async fn check(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        let name = hc.query_name.as_deref().unwrap_or_default();
        let qtype = hc.query_type.as_deref().unwrap_or("A");
        network(hc, t, dns(t.probe_addr(), name, qtype)).await
    }
}

fn rcode_name(c: ResponseCode) -> String {
    match u16::from(c) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

async fn dns(addr: SocketAddr, name: &str, qtype: &str) -> Result<String, CheckError> {
    let qname = Name::from_ascii(name).map_err(|source| CheckError::QueryName {
        name: name.to_string(),
        source,
    })?;
    let rtype: RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| CheckError::QueryType(qtype.to_string()))?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, rtype));
    let id = msg.metadata.id;
    let wire = msg.to_vec().map_err(CheckError::EncodeQuery)?;

    let sock = udp_socket(addr).await?;
    sock.send(&wire).await.map_err(CheckError::io("send"))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = sock.recv(&mut buf).await.map_err(CheckError::io("recv"))?;
        // Stray or garbled datagrams are skipped; the timeout bounds the wait for ours.
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        let code = reply.metadata.response_code;
        return if code == ResponseCode::NoError {
            Ok(format!("NOERROR, {} answers", reply.answers.len()))
        } else {
            Err(CheckError::DnsRcode(rcode_name(code)))
        };
    }
}
