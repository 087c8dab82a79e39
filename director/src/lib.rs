//! Library part of the director: the kernel IPVS client and reconciler, shared with the lab
//! scenarios and benchmarks in `tests/`.

pub mod health;
pub mod ipvs;
