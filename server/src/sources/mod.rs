//! Where messages come from.

pub mod embedded_broker;
pub mod mqtt;
