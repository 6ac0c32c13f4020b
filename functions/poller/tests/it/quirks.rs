//! The poller against a simulator that answers the way real Tradecloud may, which its docs do
//! not rule out (the simulator's defaults are the convenient case): unsorted pages, an inclusive
//! `lastUpdatedAfter`, zone-less timestamps, times spelt as java.time writes them, tokens
//! with only `exp` that expire while a run pages, and pages capped below the size asked. Under each switch alone and all together, over HTTP with
//! the real client, while objects change between runs and while a run pages: every state the
//! simulator ever served or holds at the end is on the queue exactly once, and every stream's
//! cursor keeps moving up to the newest state. The stores are in memory (as in `sim.rs`); the
//! simulator and the client are real, over HTTP.

use crate::common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use common::*;
use tcrelay_poll::testing::PagesOfTime;
use tcrelay_poll::{
    Deviations, NoDeadline, PollConfig, PollStream, RunRequest, StopReason, run, run_stream,
};
use tradecloud_model::timestamp;
use tradecloud_sim::{Endpoint, Quirks, SimConfig, Simulator, WorldConfig};

const STREAMS: [PollStream; 3] = [
    PollStream::Orders,
    PollStream::SingleDeliveryOrders,
    PollStream::Shipments,
];

/// A state with its time in Tradecloud's zoned form, so a zone-less copy compares equal.
fn normal((class, id, at): &State) -> State {
    let at = timestamp::parse(at)
        .map(timestamp::format)
        .unwrap_or_else(|_| at.clone());
    (class.clone(), id.clone(), at)
}

/// Cursor values compared as instants (a zone-less cursor is written with `Z`).
fn instant(text: Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    text.map(|t| timestamp::parse(&t).expect("the cursor is a timestamp"))
}

struct Outcome {
    deviations: Deviations,
    /// Each stream's cursor at the end, as stored.
    cursors: Vec<Option<String>>,
    refreshes: usize,
    unauthorized_polls: usize,
}

async fn poll_under(quirks: Quirks, seed: u64) -> Outcome {
    let sim = Simulator::start(SimConfig {
        world: WorldConfig {
            max_step_ms: 1_500,
            // Ties on one millisecond, so inclusive answers and ties both occur.
            same_millisecond_probability: 0.2,
            ..world(seed, 300, 80)
        },
        quirks,
        // Tokens die every 2 s; a run of these pages at the rate below takes longer.
        access_token_ttl: if quirks.exp_only_tokens {
            Duration::from_secs(2)
        } else {
            SimConfig::default().access_token_ttl
        },
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let per_second = if quirks.exp_only_tokens { 40 } else { 1_000 };
    let m = memory_ports(Arc::new(api(&sim, per_second)), KeySink::new());
    let config = PollConfig {
        page_limit: 20,
        ..config(&STREAMS)
    };
    let mut deviations = Deviations::default();
    let mut cursors: Vec<_> = STREAMS.iter().map(|_| None).collect();
    for round in 0..6 {
        if round > 0 {
            sim.advance(120).unwrap();
        }
        // Every other round objects also change while the run pages.
        sim.set_changes_per_poll(if round % 2 == 1 { 3 } else { 0 });
        let report = run(
            &m.ports,
            &config,
            &RunRequest::scheduled(format!("run-{round}")),
            &NoDeadline,
        )
        .await;
        assert!(
            !report.failed(),
            "{quirks:?} round {round}: {:?}",
            report.results
        );
        for (i, s) in report.summaries().into_iter().enumerate() {
            assert_eq!(
                s.stop,
                Some(StopReason::CaughtUp),
                "{quirks:?} round {round}: {s:?}"
            );
            let d = &s.deviations;
            deviations.unsorted_pages += d.unsorted_pages;
            deviations.inclusive_items += d.inclusive_items;
            deviations.zoneless_timestamps += d.zoneless_timestamps;
            deviations.short_pages += d.short_pages;
            // The stream keeps moving: the cursor never stands still while the world changes.
            let now = instant(m.cursors.value(STREAMS[i].as_str()));
            assert!(
                now > cursors[i] || (round > 0 && s.objects == 0),
                "{quirks:?} round {round}: {} cursor stuck at {now:?}",
                STREAMS[i]
            );
            cursors[i] = now;
        }
    }
    final_run_relays_everything(&sim, &m, &config, quirks).await;
    let requests = sim.api_requests();
    let outcome = Outcome {
        deviations,
        cursors: STREAMS
            .iter()
            .map(|s| m.cursors.value(s.as_str()))
            .collect(),
        refreshes: requests
            .iter()
            .filter(|r| r.endpoint == Some(Endpoint::Refresh) && r.status == 200)
            .count(),
        unauthorized_polls: requests
            .iter()
            .filter(|r| r.status == 401 && r.endpoint != Some(Endpoint::Refresh))
            .count(),
    };
    sim.shutdown().await;
    outcome
}

/// A last run while nothing changes; then every state the simulator served or holds is on
/// the queue exactly once, and the order and shipment cursors stand at the newest state.
async fn final_run_relays_everything(
    sim: &Simulator,
    m: &MemoryPorts,
    config: &PollConfig,
    quirks: Quirks,
) {
    sim.set_changes_per_poll(0);
    let report = run(
        &m.ports,
        config,
        &RunRequest::scheduled("final"),
        &NoDeadline,
    )
    .await;
    assert!(!report.failed(), "{quirks:?} final: {:?}", report.results);
    let states: Vec<State> = m.sink.states().iter().map(normal).collect();
    assert_no_state_twice(&states);
    let sent: HashSet<&State> = states.iter().collect();
    // Both order streams relay under the class `order`: a state is relayed by whichever
    // stream sees it first and is a duplicate for the other.
    let mut expected: HashSet<State> = sim.served().into_iter().collect();
    expected.extend(
        sim.objects()
            .into_iter()
            .map(|o| (o.class, o.id, o.last_updated_at)),
    );
    let missing: Vec<&State> = expected.iter().filter(|s| !sent.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{quirks:?}: {} states served or current but never enqueued, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    for (stream, class) in [
        (PollStream::Orders, "order"),
        (PollStream::Shipments, "shipment"),
    ] {
        assert_eq!(
            instant(m.cursors.value(stream.as_str())),
            instant(newest(sim, class)),
            "{quirks:?}: {stream} cursor at the newest state"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_convenient_defaults_show_no_deviation() {
    let o = poll_under(Quirks::default(), 31).await;
    assert_eq!(o.deviations, Deviations::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsorted_pages_lose_nothing_and_are_counted() {
    let o = poll_under(
        Quirks {
            unsorted: true,
            ..Quirks::default()
        },
        32,
    )
    .await;
    assert!(o.deviations.unsorted_pages > 0, "{:?}", o.deviations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusive_last_updated_after_loses_nothing_and_is_counted() {
    let o = poll_under(
        Quirks {
            inclusive_after: true,
            ..Quirks::default()
        },
        33,
    )
    .await;
    assert!(o.deviations.inclusive_items > 0, "{:?}", o.deviations);
    assert_eq!(o.deviations.unsorted_pages, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_less_timestamps_lose_nothing_and_are_counted() {
    let o = poll_under(
        Quirks {
            zoneless: true,
            ..Quirks::default()
        },
        34,
    )
    .await;
    assert!(o.deviations.zoneless_timestamps > 0, "{:?}", o.deviations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_time_spellings_lose_nothing() {
    let o = poll_under(
        Quirks {
            java_time: true,
            ..Quirks::default()
        },
        37,
    )
    .await;
    // The cursors, and what goes back to Tradecloud, are in the documented form.
    assert!(
        o.cursors.iter().all(|c| c
            .as_deref()
            .is_some_and(|c| timestamp::is_rfc3339(c) && c.ends_with('Z'))),
        "{:?}",
        o.cursors
    );
    assert_eq!(o.deviations, Deviations::default(), "zoned times");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exp_only_tokens_expiring_during_runs_are_refreshed_in_time() {
    let o = poll_under(
        Quirks {
            exp_only_tokens: true,
            ..Quirks::default()
        },
        35,
    )
    .await;
    assert!(o.refreshes > 0, "tokens were refreshed from exp");
    assert_eq!(
        o.unauthorized_polls, 0,
        "no request went out with an expired token"
    );
}

/// Pages of at most 7 objects while the run asks for 20 (with the `total` of every match),
/// in an unsorted index: taken for the end of the result set, the first short page ended a
/// walk and moved the cursor past every object beyond it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_capped_below_the_size_asked_lose_nothing() {
    for unsorted in [false, true] {
        let o = poll_under(
            Quirks {
                page_cap: Some(7),
                unsorted,
                ..Quirks::default()
            },
            38,
        )
        .await;
        assert!(o.deviations.short_pages > 0, "{:?}", o.deviations);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deviation_at_once_loses_nothing() {
    let o = poll_under(
        Quirks {
            unsorted: true,
            inclusive_after: true,
            zoneless: true,
            exp_only_tokens: true,
            java_time: true,
            page_cap: Some(7),
        },
        36,
    )
    .await;
    let d = o.deviations;
    assert!(
        d.unsorted_pages > 0 && d.zoneless_timestamps > 0 && d.short_pages > 0,
        "{d:?}"
    );
    assert!(o.refreshes > 0);
    assert_eq!(o.unauthorized_polls, 0);
}

/// Seeds beyond the ones above: with `unsorted` the simulator's index order holds each buyer's
/// orders in time order, so whole runs may meet only pages that look sorted while paging by
/// time passes another buyer's older orders; with an inclusive `lastUpdatedAfter`, a full
/// sorted page's last timestamp may change before it is asked for again. Before the
/// `total` check and whole-page relaying, 8 of 120 runs over seeds 100 to 129 lost states
/// (docs/polling.md); each run here asserts every state served or current is on the queue.
/// `QUIRKS_SEEDS=a..b` runs each quirk set, and every deviation at once, over those seeds too
/// (docs/polling.md, "Searching for losses"). Seeds 200-299 so (400 runs, 22 minutes in a debug
/// build beside other work): none failed; seeds 300-379 after the fourth review's mends to the
/// poll loop (320 runs): none failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_sorted_by_chance_lose_nothing_over_more_seeds() {
    let unsorted = Quirks {
        unsorted: true,
        ..Quirks::default()
    };
    let inclusive = Quirks {
        inclusive_after: true,
        ..Quirks::default()
    };
    let both = Quirks {
        inclusive_after: true,
        ..unsorted
    };
    // The runs that lost states before (each quirk set and seed).
    let runs = [
        (unsorted, 100),
        (unsorted, 113),
        (unsorted, 119),
        (both, 101),
        (inclusive, 113),
        (inclusive, 127),
        (inclusive, 128),
    ];
    let mut unsorted_pages = 0;
    for (quirks, seed) in runs {
        unsorted_pages += poll_under(quirks, seed).await.deviations.unsorted_pages;
    }
    assert!(unsorted_pages > 0);
    // `QUIRKS_SEEDS=a..b`: every quirk set over those seeds too, each run on its own task so
    // that one failure names its seed and the others still run (a search, not run by CI).
    if let Ok(range) = std::env::var("QUIRKS_SEEDS") {
        let (from, to) = range.split_once("..").expect("QUIRKS_SEEDS=a..b");
        let seeds = from.parse::<u64>().expect("a seed")..to.parse::<u64>().expect("a seed");
        let all = Quirks {
            zoneless: true,
            exp_only_tokens: true,
            java_time: true,
            page_cap: Some(7),
            ..both
        };
        let mut failed = Vec::new();
        for seed in seeds {
            for quirks in [unsorted, inclusive, both, all] {
                if tokio::spawn(poll_under(quirks, seed)).await.is_err() {
                    failed.push((quirks, seed));
                }
            }
        }
        assert!(failed.is_empty(), "runs that failed: {failed:?}");
    }
}

/// A simulator of `world` answering with `quirks`, and in-memory stores polling it.
async fn backlog_under(quirks: Quirks, world: WorldConfig) -> (Simulator, MemoryPorts) {
    let sim = Simulator::start(SimConfig {
        world,
        quirks,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let m = memory_ports(Arc::new(api(&sim, 1_000)), KeySink::new());
    (sim, m)
}

/// A backlog of unsorted answers larger than one run can walk (300 orders and 80 shipments in
/// pages of 10, at most 4 pages a run), while objects change as runs page: each run goes on
/// with the walk where the last one stopped (the walk's progress is stored with the cursor),
/// so every stream catches up, and nothing is lost or sent twice. Before, every run walked the
/// set from its start to the same page bound and the cursors never moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsorted_backlog_larger_than_a_run_is_walked_over_several_runs() {
    let quirks = Quirks {
        unsorted: true,
        inclusive_after: true,
        zoneless: true,
        ..Quirks::default()
    };
    let (sim, m) = backlog_under(quirks, world(41, 300, 80)).await;
    let config = PollConfig {
        page_limit: 10,
        max_pages: 4,
        ..config(&STREAMS)
    };
    sim.set_changes_per_poll(1);
    let (mut bounded, mut walks_stored) = (0, 0);
    let mut caught_up = false;
    for round in 0..60 {
        let report = run(
            &m.ports,
            &config,
            &RunRequest::scheduled(format!("run-{round}")),
            &NoDeadline,
        )
        .await;
        assert!(!report.failed(), "round {round}: {:?}", report.results);
        let summaries = report.summaries();
        bounded += summaries
            .iter()
            .filter(|s| s.stop == Some(StopReason::MaxPages))
            .count();
        // A walk's progress (it lists its page), not the mark that the answers are unsorted.
        walks_stored += STREAMS
            .iter()
            .filter(|s| {
                m.cursors
                    .walk(s.as_str())
                    .is_some_and(|w| w.contains("\"page\""))
            })
            .count();
        if summaries
            .iter()
            .all(|s| s.stop == Some(StopReason::CaughtUp))
        {
            caught_up = true;
            break;
        }
    }
    assert!(caught_up, "the streams did not catch up in 60 runs");
    assert!(bounded > 0 && walks_stored > 0, "{bounded} {walks_stored}");
    final_run_relays_everything(&sim, &m, &config, quirks).await;
    sim.shutdown().await;
}

/// A bulk change: nearly every order and shipment changed in the same millisecond, far more
/// objects than a run may fetch, and a deadline that leaves each run one page (a slow
/// Tradecloud, a short Lambda timeout), sorted and unsorted, while objects change as runs page:
/// each run goes on inside the timestamp, or checks the move the last run made, where the last
/// one stopped (kept with the cursor), so every stream catches up, and nothing is lost or sent
/// twice. Before, every run paged the timestamp from its start (or asked the same page after
/// the cursor) and the cursors never moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_change_larger_than_a_run_is_paged_one_page_a_run() {
    for unsorted in [false, true] {
        let quirks = Quirks {
            unsorted,
            inclusive_after: true,
            ..Quirks::default()
        };
        let world = WorldConfig {
            same_millisecond_probability: 0.97,
            ..world(43, 120, 30)
        };
        let (sim, m) = backlog_under(quirks, world).await;
        let config = PollConfig {
            page_limit: 10,
            ..config(&STREAMS)
        };
        let mut kept = 0;
        let mut caught_up = false;
        for round in 0..400 {
            sim.set_changes_per_poll(usize::from(round < 20));
            let mut all = true;
            for stream in STREAMS {
                let s = run_stream(
                    &m.ports,
                    &config,
                    stream,
                    &RunRequest::scheduled(format!("run-{round}")),
                    &PagesOfTime(AtomicUsize::new(1)),
                )
                .await
                .unwrap_or_else(|f| panic!("{quirks:?} round {round}: {f}"));
                assert!(s.pages <= 1, "{quirks:?} round {round}: {s:?}");
                all &= s.stop == Some(StopReason::CaughtUp);
                kept += usize::from(
                    m.cursors
                        .walk(stream.as_str())
                        .is_some_and(|w| w.contains("\"tie\"") || w.contains("\"moveTo\"")),
                );
            }
            if all && round >= 20 {
                caught_up = true;
                break;
            }
        }
        assert!(
            caught_up,
            "{quirks:?}: the streams did not catch up in 400 runs"
        );
        assert!(unsorted || kept > 0, "{quirks:?}: no progress kept");
        final_run_relays_everything(&sim, &m, &config, quirks).await;
        sim.shutdown().await;
    }
}
