//! Request builders and a feature-complete configuration shared by the cluster tests.

use lvs_proto::v1 as pb;

/// A request carrying `x-lvs-principal: principal`.
pub fn with_principal<T>(msg: T, principal: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        lvs_proto::PRINCIPAL_KEY,
        principal.parse().expect("ASCII principal"),
    );
    r
}

/// A service with just key and scheduler.
pub fn service(key: &str, scheduler: &str) -> pb::Service {
    pb::Service {
        key: key.into(),
        scheduler: scheduler.into(),
        ..Default::default()
    }
}

/// A direct-routing real server.
pub fn real(address: &str, port: u32, weight: u32) -> pb::RealServer {
    pb::RealServer {
        address: address.into(),
        port,
        weight: Some(weight),
        ..Default::default()
    }
}

/// A configuration touching every feature: all protocols and families, persistence with
/// netmasks, sh/mh flags, every forwarding method and tunnel type, thresholds, every kind of
/// health check, VIP groups and sync settings.
pub const RICH_CONFIG: &str = r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "wrr"
persistence = { timeout = 300, netmask = "255.255.255.0" }
health_check = { kind = "http", path = "/healthz", host = "www.example.org", expect_status = "200-399", interval_ms = 1000, timeout_ms = 500, rise = 2, fall = 3, on_failure = "remove" }

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5
upper_threshold = 1000
lower_threshold = 100

[[service.reals]]
address = "10.0.1.2"
port = 8080
weight = 3
forward = "masq"

[[service.reals]]
address = "10.0.1.3"
port = 80
forward = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
tunnel_csum = "remcsum"

[[service.reals]]
address = "10.0.1.4"
port = 80
forward = "tunnel"
tunnel_type = "gre"
tunnel_csum = "csum"

[[service.reals]]
address = "2001:db8::10"
port = 80
forward = "tunnel"
tunnel_type = "ipip"

[[service]]
key = "udp/10.0.0.2:53"
scheduler = "sh"
sched_flags = ["fallback", "port"]
one_packet = true
health_check = { kind = "dns", query_name = "example.org", query_type = "A" }

[[service.reals]]
address = "10.0.2.1"
port = 53
weight = 0

[[service.reals]]
address = "10.0.2.2"
port = 53

[[service]]
key = "sctp/10.0.0.3:9"
scheduler = "mh"
sched_flags = ["port"]
health_check = { kind = "tcp", port = 9999 }

[[service.reals]]
address = "10.0.3.1"
port = 9

[[service]]
key = "tcp/[2001:db8::1]:443"
scheduler = "wlc"
weight_policy = "latency"
persistence = { timeout = 600, netmask = "64" }
health_check = { kind = "https", path = "/" }

[[service.reals]]
address = "2001:db8::21"
port = 443
weight = 10

[[service.reals]]
address = "2001:db8::22"
port = 8443
forward = "masq"

[[service]]
key = "udp/[2001:db8::2]:5000"
scheduler = "twos"
health_check = { kind = "udp", send = "ping", expect = "pong" }

[[service.reals]]
address = "2001:db8::31"
port = 5000

[[service]]
key = "fwmark/5"
scheduler = "wrr"
weight_policy = "load"
health_check = { kind = "exec", command = ["/usr/local/bin/check", "--deep"] }

[[service.reals]]
address = "10.0.5.1"
port = 0

[[service.reals]]
address = "10.0.5.2"
port = 8080
forward = "masq"

[[service]]
key = "fwmark6/7"
scheduler = "wlc"
persistence = { timeout = 60, netmask = "48" }

[[service.reals]]
address = "2001:db8::71"
port = 0

[[service]]
key = "tcp/10.0.0.4:0"
scheduler = "dh"
persistence = { timeout = 120 }

[[service.reals]]
address = "10.0.4.1"
port = 0

[[vip_group]]
name = "web"
interface = "eth0"
addresses = ["10.0.0.1/24", "10.0.0.4/24", "10.0.0.2/32", "10.0.0.3/32"]

[[vip_group]]
name = "v6"
interface = "eth0.100"
addresses = ["2001:db8::1/64", "2001:db8::2/128"]

[sync]
interface = "eth1"
syncid = 7
group = "224.0.0.81"
port = 8848
ttl = 2
"#;
