//! How a decode's time grows with its body, measured in one run: the tests' check of linear
//! work, instead of a time limit.

use std::time::{Duration, Instant};

/// How many times longer `decode` takes on `make(32 * n)` than on `make(n)`. Not a time limit,
/// which a slow or loaded enough machine fails (CI's is both) and a fast one passes whatever
/// the decode does: both bodies are timed in the same run on the same machine, so its speed
/// cancels out, and each timing is the least of several, interleaved, so a pause of the machine
/// (which only ever lengthens a timing) must hit every timing of the larger body to count.
pub fn growth_on_32_times_the_body(
    make: impl Fn(usize) -> String,
    n: usize,
    decode: impl Fn(&str),
) -> f64 {
    let small = make(n);
    let large = make(32 * n);
    let time = |body: &str| {
        let started = Instant::now();
        decode(body);
        started.elapsed()
    };
    // A first decode of each, untimed: the caches and the allocator's pages warmed.
    time(&small);
    time(&large);
    let (mut best_small, mut best_large) = (Duration::MAX, Duration::MAX);
    for _ in 0..9 {
        best_small = best_small.min(time(&small));
        best_large = best_large.min(time(&large));
    }
    best_large.as_secs_f64() / best_small.as_secs_f64().max(1e-9)
}

/// The most [`growth_on_32_times_the_body`] may be for a decode, or the refusal of a hostile
/// body. Work linear in the body (reading or scanning it) grows 32-fold at most, less with a fixed part: with the
/// decode made to scan its body 20 times over, these tests measured 22 to 28. Work quadratic in
/// it (a body of thousands of nested elements read to its end, something done per element over
/// the whole body) grows 1024-fold: with the decode made to count the lines before each
/// element, 1300 to 2000. 160 leaves a factor of five or more on either side.
pub const LINEAR_GROWTH_BOUND: f64 = 160.0;
