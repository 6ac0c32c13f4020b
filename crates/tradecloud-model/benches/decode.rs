//! Decode and tXML costs: a small JSON event, the 500-line order (Tradecloud's maximum) in JSON
//! and in tXML, and writing that order as tXML.
//!
//! ```text
//! cargo bench -p tradecloud-model --bench decode -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradecloud_model::decode_webhook;
use tradecloud_model::txml::to_txml;

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/webhook")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode(c: &mut Criterion) {
    let small = fixture("order-accepted-one-element-lists.json");
    let large_json = fixture("order-500-lines.json");
    let large_xml = fixture("order-500-lines.xml");
    let large_value = decode_webhook(&large_json, Some("application/json"))
        .expect("the 500-line fixture decodes")
        .payload;

    let mut group = c.benchmark_group("model");
    for (name, body, content_type) in [
        ("decode small event JSON", &small, "application/json"),
        (
            "decode 500-line order JSON",
            &large_json,
            "application/json",
        ),
        ("decode 500-line order tXML", &large_xml, "application/xml"),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| decode_webhook(black_box(body), Some(content_type)).expect("decodes"))
        });
    }
    group.throughput(Throughput::Bytes(large_xml.len() as u64));
    group.bench_function("to_txml 500-line order", |b| {
        b.iter(|| to_txml(black_box(&large_value)).expect("writes"))
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
