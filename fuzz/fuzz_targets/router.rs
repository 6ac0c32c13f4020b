//! The webhook router under arbitrary methods, paths, headers, credentials and bodies; the
//! promises checked are in `tcrelay_core::fuzzing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tcrelay_core::fuzzing::run_case(data);
});
