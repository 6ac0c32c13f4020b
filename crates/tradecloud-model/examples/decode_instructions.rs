//! One kind of work on the 500-line order, repeated: the target of an instruction count.
//!
//! Wall and CPU time on a shared machine move with its load (the decode bench's tXML ratio
//! ranged 2.2–3.2× over runs); the number of instructions a piece of work executes does not.
//! `scripts/bench.sh instructions` runs this under valgrind's cachegrind once per mode and
//! reports each decode's instructions against its floor's, in the same run:
//!
//! - `scan`: the tXML floor, a bare quick-xml event scan (the decode bench's floor);
//! - `txml`: the whole webhook decode of the tXML body;
//! - `json-value`: the JSON floor, a bare `serde_json::Value` parse;
//! - `json`: the whole webhook decode of the JSON body;
//! - `none`: reading the fixtures only, subtracted from every other mode.
//!
//! ```text
//! cargo build --release -p tradecloud-model --example decode_instructions
//! valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     $CARGO_TARGET_DIR/release/examples/decode_instructions txml 3
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use tradecloud_model::decode_webhook;

use fixtures::fixture;

#[path = "../benches/support/fixtures.rs"]
mod fixtures;
#[path = "../benches/support/txml_floor.rs"]
mod txml_floor;

/// The allocator every binary of the relay runs on, so the count is of what they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(mode), repeat) = (args.next(), args.next()) else {
        eprintln!("usage: decode_instructions scan|txml|json-value|json|none [REPEAT]");
        return ExitCode::FAILURE;
    };
    let Ok(repeat) = repeat.as_deref().unwrap_or("3").parse::<usize>() else {
        eprintln!("REPEAT must be a whole number");
        return ExitCode::FAILURE;
    };
    let xml = fixture("order-500-lines.xml");
    let json = fixture("order-500-lines.json");
    for _ in 0..repeat {
        match mode.as_str() {
            "scan" => {
                black_box(txml_floor::quick_xml_scan(black_box(&xml)));
            }
            "txml" => {
                black_box(
                    decode_webhook(black_box(&xml), Some("application/xml")).expect("decodes"),
                );
            }
            "json-value" => {
                black_box(
                    serde_json::from_slice::<serde_json::Value>(black_box(&json)).expect("parses"),
                );
            }
            "json" => {
                black_box(
                    decode_webhook(black_box(&json), Some("application/json")).expect("decodes"),
                );
            }
            "none" => {}
            other => {
                eprintln!("unknown mode {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
