//! JSON webhook bodies, fetched orders and shipments: see `invariants.rs`.
#![no_main]

#[path = "../invariants.rs"]
#[allow(dead_code)] // each target uses part of it
mod invariants;

libfuzzer_sys::fuzz_target!(|data: &[u8]| invariants::run_target("decode_json", data));
