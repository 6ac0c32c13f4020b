//! Decode and tXML costs: a small JSON event, the 500-line order (Tradecloud's maximum) in JSON
//! and in tXML, and writing that order as tXML.
//!
//! Group `floor` runs each decode beside its floor, in the same run: a bare `serde_json::Value`
//! parse of the same JSON bytes, and a bare quick-xml event scan of the same tXML bytes. The
//! ratio of the medians is how far the decode is from what reading the bytes at all costs.
//! Group `floor-cpu` runs the same four by the thread's CPU time instead of wall time
//! (`support/thread_cpu.rs`): on a shared, loaded machine its ratios are the ones to trust.
//!
//! ```text
//! cargo bench --workspace --bench decode -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/thread_cpu.rs"]
mod thread_cpu;
#[path = "support/txml_floor.rs"]
mod txml_floor;

/// The allocator every binary of the relay runs on, so the bench measures what they run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tradecloud_model::decode_webhook;
use tradecloud_model::txml::to_txml;

use fixtures::fixture;

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

fn floor(c: &mut Criterion) {
    floor_beside_decode(c, "floor");
}

fn floor_cpu(c: &mut Criterion<thread_cpu::ThreadCpu>) {
    floor_beside_decode(c, "floor-cpu");
}

fn floor_beside_decode<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let json = fixture("order-500-lines.json");
    let xml = fixture("order-500-lines.xml");
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("floor/json-value-parse", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&json)).expect("parses"))
    });
    group.bench_function("decode/json", |b| {
        b.iter(|| decode_webhook(black_box(&json), Some("application/json")).expect("decodes"))
    });
    group.throughput(Throughput::Bytes(xml.len() as u64));
    group.bench_function("floor/quick-xml-scan", |b| {
        b.iter(|| txml_floor::quick_xml_scan(black_box(&xml)))
    });
    group.bench_function("decode/txml", |b| {
        b.iter(|| decode_webhook(black_box(&xml), Some("application/xml")).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, decode, floor);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(thread_cpu::ThreadCpu);
    targets = floor_cpu
}
criterion_main!(benches, cpu_benches);
