//! Tradecloud's messages as Rust types: JSON and tXML decoding, tXML encoding.

pub mod kind;
pub mod timestamp;

pub use kind::{Format, ObjectClass, ObjectKind};
