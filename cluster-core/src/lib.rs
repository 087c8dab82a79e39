//! Pure, root-free core of the director cluster: the configuration model and its validation,
//! typed commands applied deterministically, config diffs, and the openraft/sled store. Enum name
//! tables come from one macro (`names::named_enum!`); errors are typed (`error`).

pub mod auth;
pub mod diff;
pub mod effective;
pub mod error;
pub mod health;
pub mod ipvs;
pub mod model;
pub mod names;
pub mod sim;
pub mod state;
pub mod store;
pub mod validate;
pub mod vip;
pub mod weights;

pub use diff::{Change, ChangeOp};
pub use error::{CommandError, ErrorCode};
pub use model::*;
pub use state::{Applied, ClientRequest, Command, HistoryEntry, State};
