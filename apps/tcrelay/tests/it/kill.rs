//! `tcrelay serve` as a real process, killed with SIGKILL under load and restarted on the same
//! database: every request answered 2xx before the kill is on the queue, and nothing is there
//! twice once Tradecloud's retries have gone through.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tcrelay_sqlite::SqliteStore;
use tradecloud_sim::{EventKind, SimConfig, Simulator};

const CREDENTIALS: &str = "tc:kill-test-pw";

/// Starts `tcrelay serve` on `db`, a free port, with short claim expiry, request budget and
/// Retry-After.
fn spawn_serve(db: &str) -> common::Serve {
    common::serve(
        db,
        &[
            ("TCRELAY_WEBHOOK_BASIC", CREDENTIALS),
            ("TCRELAY_IN_PROGRESS_EXPIRY_SECONDS", "2"),
            // Under the expiry, as `serve` requires: a request still running when its claim
            // expires could be overtaken by a retry.
            ("TCRELAY_REQUEST_BUDGET_MS", "1500"),
            ("TCRELAY_RETRY_AFTER_SECONDS", "1"),
        ],
    )
    .expect("tcrelay serve starts")
}

#[derive(Default)]
struct Answers {
    /// Body index -> dedupe key of its 2xx answer.
    acknowledged: HashMap<usize, String>,
}

async fn post(
    client: &reqwest::Client,
    addr: &str,
    body: &str,
) -> Result<(u16, Option<String>), reqwest::Error> {
    let response = common::post_order(client, addr, CREDENTIALS, body.to_owned()).await?;
    let status = response.status().as_u16();
    let json: serde_json::Value = response.json().await.unwrap_or_default();
    Ok((status, json["dedupeKey"].as_str().map(str::to_owned)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let db = path.to_str().unwrap().to_owned();

    // Real webhook bodies, from the simulator's world (no sender: this test is Tradecloud).
    let sim = Simulator::start(SimConfig::seeded(11)).await.unwrap();
    sim.advance(400).unwrap();
    let bodies: Vec<String> = sim
        .changes()
        .iter()
        .filter(|c| c.kind == EventKind::Order)
        .map(|c| c.webhook_body(false).to_string())
        .collect();
    assert!(bodies.len() >= 300, "{} bodies", bodies.len());
    sim.shutdown().await;

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let serve = spawn_serve(&db);
    let addr = serve.addr.clone();
    let answers = Arc::new(Mutex::new(Answers::default()));
    let kill_after = bodies.len() / 3;

    // Phase 1: load with eight requests in flight; kill -9 once a third is acknowledged.
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load = {
        let (client, addr, answers, answered) = (
            client.clone(),
            addr.clone(),
            answers.clone(),
            answered.clone(),
        );
        futures::stream::iter(bodies.clone().into_iter().enumerate()).map(move |(i, body)| {
            let (client, addr, answers, answered) = (
                client.clone(),
                addr.clone(),
                answers.clone(),
                answered.clone(),
            );
            async move {
                if let Ok((status, key)) = post(&client, &addr, &body).await
                    && (200..300).contains(&status)
                {
                    answers
                        .lock()
                        .unwrap()
                        .acknowledged
                        .insert(i, key.expect("2xx names its key"));
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        })
    }
    .buffer_unordered(8);
    let deadline = Instant::now() + Duration::from_secs(60);
    let load = tokio::spawn(async move { load.collect::<Vec<_>>().await });
    while answered.load(std::sync::atomic::Ordering::SeqCst) < kill_after {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serve.kill(); // SIGKILL: no chance to finish what is in flight
    // The rest of the load fails to connect; wait until it has.
    tokio::time::timeout(Duration::from_secs(60), load)
        .await
        .expect("the load ends once the server is gone")
        .unwrap();
    let before_kill: HashMap<usize, String> = answers.lock().unwrap().acknowledged.clone();
    assert!(before_kill.len() >= kill_after);
    assert!(
        before_kill.len() < bodies.len(),
        "the kill came too late to cut anything off"
    );

    // Everything acknowledged before the kill is on the queue, even before any restart.
    let store = SqliteStore::open(&path).unwrap();
    let keys: Vec<String> = store
        .export(true)
        .await
        .unwrap()
        .iter()
        .map(|q| q.envelope().unwrap().dedupe_key)
        .collect();
    let on_queue: HashSet<&str> = keys.iter().map(String::as_str).collect();
    for (i, key) in &before_kill {
        assert!(
            on_queue.contains(key.as_str()),
            "body {i} was acknowledged ({key}) but is lost"
        );
    }
    drop(store);

    // Phase 2: restart; Tradecloud retries everything not acknowledged (503 "in progress"
    // until a killed request's claim expires), and re-sends some acknowledged ones.
    let serve = spawn_serve(&db);
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, body) in bodies.iter().enumerate() {
        let resend = !before_kill.contains_key(&i) || i % 10 == 0;
        if !resend {
            continue;
        }
        loop {
            assert!(
                Instant::now() < deadline,
                "body {i} was never acknowledged after the restart"
            );
            match post(&client, &serve.addr, body).await {
                Ok((status, Some(key))) if (200..300).contains(&status) => {
                    if let Some(first) = before_kill.get(&i) {
                        assert_eq!(
                            status, 200,
                            "a retry of an acknowledged message is a duplicate"
                        );
                        assert_eq!(&key, first);
                    }
                    break;
                }
                Ok((status, _)) if status >= 500 => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Ok((status, _)) => panic!("body {i} answered {status}"),
                Err(e) => panic!("body {i}: {e}"),
            }
        }
    }
    serve.kill();

    let store = SqliteStore::open(&path).unwrap();
    let keys: Vec<String> = store
        .export(true)
        .await
        .unwrap()
        .iter()
        .map(|q| q.envelope().unwrap().dedupe_key)
        .collect();
    let distinct: HashSet<&str> = keys.iter().map(String::as_str).collect();
    for (i, key) in &before_kill {
        assert!(distinct.contains(key.as_str()), "body {i} ({key}) is lost");
    }
    // A request killed after its enqueue committed but before its dedupe record did is
    // enqueued again by Tradecloud's retry (the at-least-once window of a crash, docs/design.md,
    // "In-progress claims"), seconds later: the local queue drops that repeat, as SQS FIFO does
    // within five minutes. So every body is on the queue once, under its own message key.
    assert_eq!(distinct.len(), bodies.len());
    assert_eq!(
        keys.len(),
        bodies.len(),
        "a dedupe key is on the queue twice"
    );
}
