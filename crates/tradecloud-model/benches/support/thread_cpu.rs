//! A criterion measurement of the benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`)
//! instead of wall time.
//!
//! This machine is shared: other builds take the cores, and a wall-clock median moves by 2×
//! between runs while the decode's own work does not. CPU time counts only what the thread
//! ran, so a decode and its floor compare in one run even under load (cache and memory
//! bandwidth still suffer from neighbours, so ratios stay a few percent noisy).

use criterion::Throughput;
use criterion::measurement::{Measurement, ValueFormatter};
use rustix::time::{ClockId, Timespec, clock_gettime};

/// The thread's CPU time, in nanoseconds.
pub struct ThreadCpu;

fn nanos(t: Timespec) -> u64 {
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        nanos(clock_gettime(ClockId::ThreadCPUTime))
    }

    fn end(&self, started: u64) -> u64 {
        nanos(clock_gettime(ClockId::ThreadCPUTime)).saturating_sub(started)
    }

    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }

    fn zero(&self) -> u64 {
        0
    }

    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time like criterion's wall times (`ms`, `µs`), and throughputs per
/// CPU second.
struct CpuFormatter;

impl CpuFormatter {
    fn unit(typical_ns: f64) -> (f64, &'static str) {
        match typical_ns {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e3, "µs"),
            t if t < 1e9 => (1e6, "ms"),
            _ => (1e9, "s"),
        }
    }
}

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (divisor, unit) = Self::unit(typical);
        values.iter_mut().for_each(|v| *v /= divisor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_value, unit) = match *throughput {
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                (n as f64 / (1024.0 * 1024.0), "MiB/s (CPU)")
            }
            Throughput::Elements(n) | Throughput::ElementsAndBytes { elements: n, .. } => {
                (n as f64, "elem/s (CPU)")
            }
            Throughput::Bits(n) => (n as f64 / 1e6, "Mbit/s (CPU)"),
        };
        values.iter_mut().for_each(|v| *v = per_value * 1e9 / *v);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}
