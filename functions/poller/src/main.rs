//! Poller Lambda.
fn main() {}
