//! Byte-level encoding of the kernel's "IPVS" generic-netlink family. Pure: no I/O, no netlink
//! library; the socket lives in the director.
//!
//! # Kernel constants
//! [`uapi`]: the constants of include/uapi/linux/ip_vs.h and the netlink headers, and how model
//! values (families, protocols, addresses, netmasks) look to the kernel.
//!
//! # Errors
//! [`error`]: [`DecodeError`] names the attribute and the [`Problem`] with it.
//!
//! # Attributes
//! [`attr`]: the netlink-attribute (TLV) writer [`AttrWriter`] and reader [`attrs`], with typed
//! getters.
//!
//! # Requests
//! [`request`]: one [`Request`] constructor per command, and [`Request::describe`] for errors.
//!
//! # Decoders
//! [`decode`]: the kernel's replies ([`decode_service`], [`decode_dest`], [`decode_daemons`],
//! [`decode_config`], [`decode_info`]).
//!
//! # Framing
//! [`frame`]: the nlmsghdr/genlmsghdr framing used to pipeline many requests through one socket
//! ([`frame_into`]) and the split of a receive buffer into messages ([`parse_messages`]).
//!
//! Everything public is re-exported here, so callers name `codec::X` whichever file holds `X`.

pub mod attr;
pub mod decode;
pub mod error;
pub mod frame;
pub mod request;
pub mod uapi;

pub use attr::*;
pub use decode::*;
pub use error::*;
pub use frame::*;
pub use request::*;
pub use uapi::*;

// The expected byte arrays are written out by hand for a little-endian host (netlink headers and
// most integers are host order).
#[cfg(all(test, target_endian = "little"))]
mod tests;
