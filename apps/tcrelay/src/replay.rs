//! `tcrelay quarantine replay`: a kept request goes through the webhook router again, exactly
//! as if it had just arrived — same routes, decoders, filter, dedupe and queue, and for a GET
//! the same fetch from Tradecloud — so what changed since (an order Tradecloud now knows, a
//! wider filter, a fixed decoder) decides anew. It leaves the quarantine only when the relay
//! accepts it (2xx: enqueued, a duplicate, or filtered); otherwise it stays as it was, and the
//! answer is reported.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use serde::Serialize;
use tcrelay_core::ports::{Quarantine, QuarantinedRequest, StoreError, TradecloudApi};
use tcrelay_core::{Answered, WebhookApp, WebhookSettings, webhook_router};
use tcrelay_sqlite::{QuarantineEntry, SqliteStore};
use tower::ServiceExt as _;

use crate::backend::Ports;
use crate::error::OpsError;

/// What one replay ended in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replayed {
    /// The quarantine id.
    pub id: i64,
    /// The relay's answer now; none when it was not replayed (see `reason`).
    pub status: Option<u16>,
    /// The relay's `outcome` (`enqueued`, `duplicate`, `filtered`, or why not), or
    /// `not-replayed`.
    pub outcome: String,
    /// Why the relay refused it again, or why it was not replayed (its entry is kept as it
    /// was).
    pub reason: Option<String>,
    /// Whether it left the quarantine.
    pub removed: bool,
}

/// Catches what the router would quarantine during a replay: the entry being replayed is the
/// one kept, so a second refusal must not add a copy of it.
#[derive(Debug, Default)]
struct Refused(Mutex<Option<String>>);

#[async_trait]
impl Quarantine for Refused {
    async fn keep(&self, request: &QuarantinedRequest) -> Result<(), StoreError> {
        let mut reason = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *reason = Some(request.reason.clone());
        Ok(())
    }
}

/// The router a replay goes through and the credential it presents.
pub struct Replayer {
    router: axum::Router,
    authorization: String,
    refused: Arc<Refused>,
}

impl std::fmt::Debug for Replayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replayer").finish_non_exhaustive()
    }
}

/// Headers not carried over from the kept request: the credential is our own, and the body's
/// framing is the new request's.
const NOT_REPLAYED: [http::HeaderName; 4] = [
    http::header::AUTHORIZATION,
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONNECTION,
];

impl Replayer {
    /// The webhook as `serve` builds it from `settings`, on `ports`, with `api` for GETs. The
    /// kept requests carry no credentials (they are never stored), so the replay presents a
    /// Bearer token of its own, accepted by this router only.
    pub fn new(
        mut settings: WebhookSettings,
        ports: &Ports,
        api: Option<Arc<dyn TradecloudApi>>,
    ) -> Self {
        let token = format!("replay-{}", uuid::Uuid::new_v4().simple());
        settings.credentials.add_bearer(&token);
        let refused = Arc::new(Refused::default());
        let app = WebhookApp::new(
            settings,
            Arc::clone(&ports.sink),
            Arc::clone(&ports.dedupe),
            Arc::clone(&refused) as Arc<dyn Quarantine>,
            api,
        );
        Self {
            router: webhook_router(Arc::new(app)),
            authorization: format!("Bearer {token}"),
            refused,
        }
    }

    /// Replays `entry`; removes it from `store` when the relay accepts it.
    pub async fn replay(
        &self,
        store: &SqliteStore,
        entry: &QuarantineEntry,
    ) -> Result<Replayed, OpsError> {
        let kept = &entry.request;
        // A POST kept without its body (refused before it was read: too large) would only be
        // refused again, as malformed, which hides why it was kept.
        if kept.method.eq_ignore_ascii_case("POST") && kept.body.is_empty() {
            return Ok(Replayed {
                id: entry.id,
                status: None,
                outcome: "not-replayed".to_owned(),
                reason: Some(format!(
                    "its body was not kept ({}); ask the sender to send it again, \
                     then drop this entry",
                    kept.reason
                )),
                removed: false,
            });
        }
        let invalid = |e: &dyn std::fmt::Display| {
            OpsError::Invalid(format!(
                "quarantined request {} cannot be replayed: {e}",
                entry.id
            ))
        };
        let mut builder = http::Request::builder()
            .method(kept.method.as_str())
            .uri(kept.uri.as_str());
        let mut has_content_type = false;
        for (name, value) in &kept.headers {
            let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            if NOT_REPLAYED.contains(&name) {
                continue;
            }
            has_content_type |= name == http::header::CONTENT_TYPE;
            builder = builder.header(name, value.as_str());
        }
        if let (false, Some(content_type)) = (has_content_type, &kept.content_type) {
            builder = builder.header(http::header::CONTENT_TYPE, content_type.as_str());
        }
        let request = builder
            .header(http::header::AUTHORIZATION, self.authorization.as_str())
            .body(Body::from(kept.body.clone()))
            .map_err(|e| invalid(&e))?;
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let outcome = response
            .extensions()
            .get::<Answered>()
            .map_or("unknown", |a| a.outcome.as_str())
            .to_owned();
        let refused = self
            .refused
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        // A refusal the router does not quarantine (503: the queue or Tradecloud unavailable)
        // says why in its problem's detail.
        let reason = match refused {
            Some(reason) => Some(reason),
            None if !status.is_success() => problem_detail(response.into_body()).await,
            None => None,
        };
        let removed = status.is_success() && store.quarantine_drop(entry.id).await?;
        Ok(Replayed {
            id: entry.id,
            status: Some(status.as_u16()),
            outcome,
            reason,
            removed,
        })
    }
}

/// The `detail` of a problem+json answer, if it is one.
async fn problem_detail(body: Body) -> Option<String> {
    // Problems are small; anything larger is not one of ours.
    let bytes = axum::body::to_bytes(body, 64 * 1024).await.ok()?;
    let problem: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    problem.get("detail")?.as_str().map(str::to_owned)
}

/// The refusal of a replay without `serve`'s environment, told by the webhook settings having
/// none of the credentials `serve` requires (`reason`, the configuration's own error naming
/// them): the event filter and the limits decide what each entry becomes, and a filtered one
/// leaves the quarantine, so defaults could lose one.
pub fn needs_serve_environment(reason: &dyn std::fmt::Display) -> OpsError {
    OpsError::Invalid(format!(
        "quarantine replay needs serve's environment ({reason}): its event filter and limits \
         decide what each replayed request becomes, and a filtered one leaves the quarantine; \
         load the same variables as serve, e.g. `set -a; . /etc/tcrelay/env; set +a`"
    ))
}

/// One line of the settings a replay decides by: the filter lists, the limits, whether a
/// Tradecloud login is there for GETs. Never a credential.
pub fn settings_in_force(settings: &crate::Settings, login: bool) -> String {
    use tcrelay_core::config::{
        TCRELAY_EVENT_ALLOW, TCRELAY_EVENT_DENY, TCRELAY_MAX_BODY_BYTES, TCRELAY_MAX_LINES,
        TCRELAY_REQUEST_BUDGET_MS,
    };
    let list = |patterns: &[tcrelay_core::filter::Pattern], empty: &str| {
        if patterns.is_empty() {
            empty.to_owned()
        } else {
            patterns
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let webhook = &settings.webhook;
    format!(
        "replaying with: {TCRELAY_EVENT_ALLOW}={} {TCRELAY_EVENT_DENY}={} \
         {TCRELAY_MAX_BODY_BYTES}={} {TCRELAY_MAX_LINES}={} {TCRELAY_REQUEST_BUDGET_MS}={} \
         TCRELAY_DEDUPE_TTL_DAYS={} Tradecloud login for GETs: {}",
        list(webhook.filter.allow(), "(every event)"),
        list(webhook.filter.deny(), "(none)"),
        webhook.max_body_bytes,
        webhook.max_lines,
        webhook.request_budget.as_millis(),
        settings.dedupe.ttl.as_secs() / 86_400,
        if login { "yes" } else { "no" }
    )
}
