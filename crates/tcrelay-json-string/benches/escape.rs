//! Writing JSON text as a JSON string (an envelope as an SQS message body): `write_string`
//! beside its peer, serde_json's own string writer, on the same texts in the same run.
//!
//! ```text
//! cargo bench -p tcrelay-json-string --bench escape -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tcrelay_json_string::write_string;

/// A fixture of the repository's, as compact JSON text (as Tradecloud sends it and an envelope
/// holds it).
fn compact(path: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path);
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
    value.to_string()
}

fn escape(c: &mut Criterion) {
    let page = compact("api/order-poll-page.json");
    let large = compact("webhook/order-500-lines.json");
    // About an envelope of the poll benchmark's orders (4.6 KB on average): the start of the
    // 500-line order.
    let envelope = &large[..large.floor_char_boundary(5000)];
    let mut group = c.benchmark_group("escape");
    for (name, text) in [
        ("poll page, 1 KB", page.as_str()),
        ("envelope-sized, 5 KB", envelope),
        ("500-line order, 1.1 MB", large.as_str()),
    ] {
        group.throughput(Throughput::Bytes(text.len() as u64));
        let mut out = Vec::with_capacity(8 * text.len() + 64);
        group.bench_function(format!("serde_json/{name}"), |b| {
            b.iter(|| {
                out.clear();
                serde_json::to_writer(&mut out, black_box(text)).expect("writes");
            })
        });
        group.bench_function(format!("write_string/{name}"), |b| {
            b.iter(|| {
                out.clear();
                write_string(&mut out, black_box(text));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, escape);
criterion_main!(benches);
