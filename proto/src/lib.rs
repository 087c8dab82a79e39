//! Generated gRPC code for the admin, cluster and internal Raft services, and conversions between
//! the API messages and the cluster-core model (API → model conversions validate field syntax and
//! name the field on error).

/// The generated code, nested as the proto packages are (the internal service's messages refer
/// to the API's by relative path).
pub mod lvs {
    pub mod v1 {
        tonic::include_proto!("lvs.v1");
    }
    pub mod raft {
        pub mod v1 {
            tonic::include_proto!("lvs.raft.v1");
        }
    }
}

pub use lvs::v1;

/// The internal director-to-director service (`lvs.raft.v1`).
pub mod raft {
    pub use crate::lvs::raft::v1::*;
}

/// Encoded file descriptors, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lvs_descriptor");

pub mod convert;
pub mod tls;

/// One line for people: `lvsctl agents` and the fan-in benchmark print it.
impl std::fmt::Display for v1::WeightEngineStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "weight engine: period {} ms, {} reports ({} rejected), {} steps, {} weight changes, report to weight p50 {:.0} ms p99 {:.0} ms max {:.0} ms",
            self.period_ms,
            self.reports_total,
            self.reports_rejected,
            self.steps,
            self.weight_writes,
            self.report_to_weight_p50_ms,
            self.report_to_weight_p99_ms,
            self.report_to_weight_max_ms
        )
    }
}

/// gRPC metadata key carrying the leader's API address when a director cannot serve a request.
pub const LEADER_HINT_KEY: &str = "x-lvs-leader";
/// gRPC metadata key naming the API principal when the cluster runs without TLS (`--insecure`);
/// with mTLS the principal is the identity in the client's certificate.
pub const PRINCIPAL_KEY: &str = "x-lvs-principal";
