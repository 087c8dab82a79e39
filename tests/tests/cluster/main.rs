//! Directors on loopback and the processes around them, in one test binary: the Raft cluster
//! through its gRPC APIs (`cluster`), the standard gRPC services (`grpc_ops`), `/metrics`
//! (`metrics`), mTLS (`tls`), agent reports turned into weights (`weights`) and the
//! `realserver-agent` binary (`agent`). Each file's tests take their own turn
//! (`lvs_tests::serial`), so files never overlap, as when each was a binary of its own.

mod agent;
mod cluster;
mod grpc_ops;
mod metrics;
mod tls;
mod weights;
