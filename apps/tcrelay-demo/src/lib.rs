//! The demo of the relay, apart from the product binary `tcrelay`: a realistic run of the
//! Tradecloud simulator against the relay in one process ([`scenario`]), the faults injected on
//! the relay's side ([`faults`]), and the check of the queue against the simulator's ground
//! truth ([`check`]). The `tcrelay-demo` binary runs it; the end-to-end tests run it on SQLite
//! and on the AWS adapters over moto.

pub mod check;
pub mod faults;
pub mod scenario;
