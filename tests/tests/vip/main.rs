//! Directors in network namespaces (root, `ip` and `nft`; these panic, never skip, without them),
//! in one test binary: the namespace topology itself (`netns_topology`), VIP ownership (`smoke`),
//! failover (`failover`), partitions (`partition`) and `director --release-vips`
//! (`release_vips`). Each file's tests take their own turn (`lvs_tests::serial`), so files never
//! overlap, as when each was a binary of its own: the partition tests' tight release thresholds
//! need the CPU to themselves.

mod failover;
mod netns_topology;
mod partition;
mod release_vips;
mod smoke;
