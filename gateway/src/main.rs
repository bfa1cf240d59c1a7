//! `mimamori-gateway` command line.
fn main() {}
