//! Webhook Lambda: wiring only (not built yet).

fn main() {}
