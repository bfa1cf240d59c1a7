//! The MQTT wire contract between a home gateway and the server.
