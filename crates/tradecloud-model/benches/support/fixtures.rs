//! The webhook fixtures the decode measurements read (`tests/fixtures/webhook/`), shared by the
//! decode bench and the instruction-count example.

use std::path::Path;

/// The bytes of `tests/fixtures/webhook/<name>`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/webhook")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
