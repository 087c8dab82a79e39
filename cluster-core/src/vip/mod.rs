//! Pure parts of VIP ownership: announcement and probe frames, and the lease rule with the timing
//! profiles that keep it safe. The I/O (addresses, raw sockets, the watchdog thread) is in the
//! director.

pub mod frames;
pub mod lease;
