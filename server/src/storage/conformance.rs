//! The storage conformance suite: one body of checks every [`Storage`] backend must pass.
//! Tests call [`run_all`] with a freshly migrated, empty store of each backend.
