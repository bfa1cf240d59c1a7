//! Authentication: who the user is (password, second factor, session) and how
//! often they may try. What they may see is decided in [`super::access`].

pub mod network;
pub mod password;
pub mod rate_limit;
pub mod session;
pub mod session_journal;
pub mod totp;
