//! The SAM template and the functions agree on the environment: every variable a function reads
//! at start-up is set by `infra/template.yaml`, none that it does not read is set, and the values
//! the template passes (parameter defaults, resource references) pass the functions' own
//! settings parsers.
//!
//! The reads are recorded by running each function's start-up settings parser
//! (`webhook::startup_config`, `poller::StartupSettings::from_env`) over the template's
//! environment through a [`RecordingEnv`], so the list of variables cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;
use tcrelay_core::env::RecordingEnv;

/// Read by the logging setup of both functions (`tcrelay_lambda::init_tracing`), not by
/// the settings parsers.
const LOG_LEVEL: &str = "RUST_LOG";

/// Variables a function reads that the template must never set, and why.
const NEVER_IN_TEMPLATE: &[(&str, &str)] = &[
    (
        "TRADECLOUD_USERNAME",
        "plain-text login: the template passes TCRELAY_TRADECLOUD_SECRET_ARN",
    ),
    (
        "TRADECLOUD_PASSWORD",
        "plain-text login: the template passes TCRELAY_TRADECLOUD_SECRET_ARN",
    ),
    (
        "TCRELAY_WEBHOOK_BASIC",
        "plain-text credentials: the template passes TCRELAY_WEBHOOK_SECRET_ARN",
    ),
    (
        "TCRELAY_WEBHOOK_BEARER",
        "plain-text credentials: the template passes TCRELAY_WEBHOOK_SECRET_ARN",
    ),
    (
        "TCRELAY_AWS_ENDPOINT_URL",
        "endpoint override for emulators (moto); AWS itself needs none",
    ),
    (
        "TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES",
        "optional override: by default each queue's own MaximumMessageSize is the threshold",
    ),
    (
        "TCRELAY_CLAIM_CHECK_FORMAT",
        "optional: the default 2.x pointer format is what current Extended Client libraries read",
    ),
];

/// The SAM template, as text and as YAML.
pub(crate) struct Template {
    pub(crate) text: String,
    pub(crate) root: Value,
}

impl Template {
    pub(crate) fn load() -> Template {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Template {
            root: serde_yaml_ng::from_str(&text).expect("the template is YAML"),
            text,
        }
    }

    /// The function's environment as the template writes it: `Globals` merged with the
    /// function's own variables (SAM's rule), values unresolved.
    pub(crate) fn environment(&self, function: &str) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for vars in [
            &self.root["Globals"]["Function"]["Environment"]["Variables"],
            &self.root["Resources"][function]["Properties"]["Environment"]["Variables"],
        ] {
            if let Some(map) = vars.as_mapping() {
                for (k, v) in map {
                    out.insert(k.as_str().expect("variable name").to_owned(), v.clone());
                }
            }
        }
        assert!(!out.is_empty(), "{function} has no environment");
        out
    }

    /// A value as the function would see it after deployment: `!Ref` to a parameter gives
    /// `overrides[name]` or the parameter's default; `!Ref` to a resource gives a realistic
    /// physical id of its type.
    fn resolve(&self, value: &Value, overrides: &BTreeMap<&str, &str>) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Tagged(tagged) if tagged.tag == "Ref" => {
                let name = tagged.value.as_str().expect("!Ref names a string");
                if let Some(value) = overrides.get(name) {
                    return (*value).to_owned();
                }
                if let Some(parameter) = self.root["Parameters"].get(name) {
                    return match parameter.get("Default") {
                        Some(default) => self.resolve(default, overrides),
                        None => panic!("parameter {name} has no default: give the test a value"),
                    };
                }
                let kind = self.root["Resources"][name]["Type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("!Ref {name}: neither parameter nor resource"));
                match kind {
                    "AWS::SQS::Queue" => {
                        format!("https://sqs.eu-west-1.amazonaws.com/123456789012/relay-{name}")
                    }
                    "AWS::DynamoDB::Table" | "AWS::S3::Bucket" => format!("relay-{name}"),
                    other => panic!("no sample physical id for a {other}"),
                }
            }
            other => panic!("unsupported value in a function's environment: {other:?}"),
        }
    }

    pub(crate) fn resolved(
        &self,
        function: &str,
        overrides: &BTreeMap<&str, &str>,
    ) -> BTreeMap<String, String> {
        self.environment(function)
            .iter()
            .map(|(k, v)| (k.clone(), self.resolve(v, overrides)))
            .collect()
    }
}

/// What the function's start-up parser reads from the template's environment; panics with the
/// parser's own message when the template's values do not pass it.
pub(crate) fn reads(function: &str, env: &BTreeMap<String, String>) -> BTreeSet<String> {
    parse(function, env).unwrap_or_else(|e| panic!("{function}: the template's values fail: {e}"))
}

/// What the function's start-up parser reads from `env`, or the parser's own message when it
/// refuses the values.
pub(crate) fn parse(
    function: &str,
    env: &BTreeMap<String, String>,
) -> Result<BTreeSet<String>, String> {
    let map: std::collections::HashMap<String, String> = env.clone().into_iter().collect();
    let recording = RecordingEnv::new(&map);
    let parsed = match function {
        "WebhookFunction" => webhook::startup_config(&recording).map(drop),
        "PollerFunction" => poller::StartupSettings::from_env(&recording).map(drop),
        other => panic!("unknown function {other}"),
    };
    parsed.map_err(|e| e.to_string())?;
    let mut asked = recording.asked();
    asked.insert(LOG_LEVEL.to_owned());
    Ok(asked)
}

/// Values for parameters without a default, and to switch the optional modes on.
fn scenarios() -> Vec<BTreeMap<&'static str, &'static str>> {
    let required = [(
        "WebhookSecretArn",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tradecloud-webhook-AbCdEf",
    )];
    let defaults: BTreeMap<_, _> = required.into_iter().collect();
    let mut everything_on = defaults.clone();
    everything_on.extend([
        (
            "TradecloudSecretArn",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tradecloud-api-AbCdEf",
        ),
        ("PollStreams", "orders,single-delivery-orders,shipments"),
        ("PollStart", "2025-01-01T00:00:00.000Z"),
        ("PollEchoSide", "buyer"),
        (
            "PollOrderStatusFilter",
            r#"{"processStatus": ["Confirmed"]}"#,
        ),
        (
            "PollShipmentStatusFilter",
            r#"{"processStatus": ["Issued"]}"#,
        ),
        (
            "EntraIdIssuer",
            "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0",
        ),
        ("EntraIdClientId", "11111111-1111-1111-1111-111111111111"),
        ("EventAllow", "Order*"),
        ("EventDeny", "*ByBuyer"),
    ]);
    vec![defaults, everything_on]
}

fn check(function: &str) {
    let template = Template::load();
    let set: BTreeSet<String> = template.environment(function).into_keys().collect();
    let never: BTreeMap<&str, &str> = NEVER_IN_TEMPLATE.iter().copied().collect();
    let mut read_in_some_scenario = BTreeSet::new();
    for overrides in scenarios() {
        let env = template.resolved(function, &overrides);
        let read = reads(function, &env);
        let unread: Vec<_> = set.difference(&read).collect();
        assert!(
            unread.is_empty(),
            "{function}: the template sets {unread:?}, which the function does not read"
        );
        let unset: Vec<_> = read
            .difference(&set)
            .filter(|v| !never.contains_key(v.as_str()))
            .collect();
        assert!(
            unset.is_empty(),
            "{function}: the function reads {unset:?}, which the template does not set"
        );
        read_in_some_scenario.extend(read);
    }
    for (var, why) in NEVER_IN_TEMPLATE {
        assert!(
            !set.contains(*var),
            "{function}: the template sets {var}, which it must not: {why}"
        );
    }
    // The exception list stays honest: each entry is something this code really reads, or
    // (for the webhook-only credentials) something the poller simply has no use for.
    let reads_it = |var: &str| read_in_some_scenario.contains(var);
    match function {
        "WebhookFunction" => {
            for (var, _) in NEVER_IN_TEMPLATE {
                assert!(
                    reads_it(var),
                    "{var} is listed but the webhook never reads it"
                );
            }
        }
        _ => {
            for var in [
                "TRADECLOUD_USERNAME",
                "TRADECLOUD_PASSWORD",
                "TCRELAY_AWS_ENDPOINT_URL",
            ] {
                assert!(
                    reads_it(var),
                    "{var} is listed but the poller never reads it"
                );
            }
        }
    }
}

#[test]
fn the_webhook_reads_exactly_what_the_template_sets() {
    check("WebhookFunction");
}

#[test]
fn the_poller_reads_exactly_what_the_template_sets() {
    check("PollerFunction");
}

#[test]
fn the_template_holds_no_credential_and_no_endpoint_override() {
    // Belt and braces beside the per-function check: nowhere in the template, not even in a
    // comment-free default, is a plain-text credential variable named.
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infra/template.yaml"
    ))
    .unwrap();
    for (var, why) in NEVER_IN_TEMPLATE {
        assert!(!text.contains(var), "the template names {var}: {why}");
    }
}

#[test]
fn the_check_notices_a_variable_the_template_forgot_and_one_nobody_reads() {
    // The recorder sees a read of a variable that is absent, so a forgotten one is caught...
    let template = Template::load();
    let overrides = scenarios().remove(0);
    let mut env = template.resolved("WebhookFunction", &overrides);
    env.remove("TCRELAY_RETRY_AFTER_SECONDS");
    assert!(reads("WebhookFunction", &env).contains("TCRELAY_RETRY_AFTER_SECONDS"));
    // ...and a variable set for the wrong function is not read by it.
    let env = template.resolved("PollerFunction", &overrides);
    assert!(!reads("PollerFunction", &env).contains("TCRELAY_QUARANTINE_QUEUE_URL"));
    assert!(
        reads(
            "WebhookFunction",
            &template.resolved("WebhookFunction", &overrides)
        )
        .contains("TCRELAY_QUARANTINE_QUEUE_URL")
    );
}
