//! Tradecloud's messages as Rust types: JSON and tXML decoding, tXML encoding.
