//! Generated gRPC code for the admin, cluster and internal Raft services, and conversions between
//! the API messages and the cluster-core model (API → model conversions validate field syntax and
//! name the field on error).

pub mod v1 {
    tonic::include_proto!("lvs.v1");
}

pub mod raft {
    tonic::include_proto!("lvs.raft.v1");
}

/// Encoded file descriptors, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("lvs_descriptor");

pub mod convert;

/// gRPC metadata key carrying the leader's API address when a director cannot serve a request.
pub const LEADER_HINT_KEY: &str = "x-lvs-leader";
/// gRPC metadata key naming the API principal (until mTLS identities exist).
pub const PRINCIPAL_KEY: &str = "x-lvs-principal";
