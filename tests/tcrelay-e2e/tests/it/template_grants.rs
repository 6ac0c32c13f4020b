//! What the SAM template lets each function do, and what reaches the webhook, against what the
//! code needs: IAM grants for every call the functions make at start-up and no more where the
//! code says how far, a route for every path, parameter ranges the functions accept, and
//! in-progress claims that outlive the function holding them.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::template_env::{Template, reads};

const FUNCTIONS: [&str; 2] = ["WebhookFunction", "PollerFunction"];

/// A value or a list of values, as IAM writes `Action` and `Resource`.
fn one_or_many(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The function's policy statements (the inline `Policies` document).
fn statements(template: &Template, function: &str) -> Vec<Value> {
    let policies = &template.root["Resources"][function]["Properties"]["Policies"];
    one_or_many(policies)
        .iter()
        .flat_map(|policy| one_or_many(&policy["Statement"]))
        .collect()
}

fn grants(statement: &Value, action: &str) -> bool {
    one_or_many(&statement["Action"])
        .iter()
        .any(|a| a.as_str() == Some(action))
}

/// `*` in an IAM `StringLike` pattern matches any run of characters (no `?` is used here).
fn like(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (0..=text.len() - head.len()).any(|i| like(tail, &text[head.len() + i..]))
        }
    }
}

#[test]
fn each_function_may_ask_the_size_limit_of_every_queue_it_sends_to() {
    // Without TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES the adapters ask each queue's
    // MaximumMessageSize at start-up (tcrelay_aws::claim_check); refused, they fall back to
    // 256 KiB and every larger message takes the S3 detour.
    let template = Template::load();
    for function in FUNCTIONS {
        if template
            .environment(function)
            .contains_key("TCRELAY_CLAIM_CHECK_THRESHOLD_BYTES")
        {
            continue;
        }
        let statements = statements(&template, function);
        let sent_to: Vec<Value> = statements
            .iter()
            .filter(|s| grants(s, "sqs:SendMessage"))
            .flat_map(|s| one_or_many(&s["Resource"]))
            .collect();
        assert!(!sent_to.is_empty(), "{function} sends to no queue");
        for queue in &sent_to {
            assert!(
                statements
                    .iter()
                    .any(|s| grants(s, "sqs:GetQueueAttributes")
                        && one_or_many(&s["Resource"]).contains(queue)),
                "{function} sends to {queue:?} but may not ask its attributes"
            );
        }
    }
}

#[test]
fn the_webhook_may_write_dedupe_records_and_no_cursor() {
    let template = Template::load();
    let dedupe: Vec<Value> = statements(&template, "WebhookFunction")
        .into_iter()
        .filter(|s| grants(s, "dynamodb:PutItem"))
        .collect();
    assert_eq!(dedupe.len(), 1, "one statement grants the webhook's writes");
    let patterns: Vec<String> =
        one_or_many(&dedupe[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
            .iter()
            .map(|p| p.as_str().expect("a pattern").to_owned())
            .collect();
    let wanted: Vec<String> = tcrelay_core::dedupe::KEY_PREFIXES
        .iter()
        .map(|prefix| format!("{prefix}*"))
        .collect();
    assert_eq!(
        patterns, wanted,
        "the condition lists the dedupe key prefixes"
    );
    let sample = tcrelay_core::dedupe::state_key(
        tradecloud_model::ObjectClass::Order,
        "o-1",
        "2025-04-23T10:01:53.812Z",
    );
    assert!(patterns.iter().any(|p| like(p, &sample)), "{sample}");
    let cursor = format!("{}orders", tcrelay_aws::cursor::CURSOR_KEY_PREFIX);
    assert!(
        !patterns.iter().any(|p| like(p, &cursor)),
        "the webhook may write the cursor item {cursor}"
    );
}

#[test]
fn every_other_path_and_method_reaches_the_function() {
    // API Gateway's own 404 for an unrouted request would be dropped by Tradecloud with no
    // trace; the function answers it as problem+json and quarantines it.
    let template = Template::load();
    let resources = template.root["Resources"].as_mapping().expect("resources");
    let default_targets: Vec<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::ApiGatewayV2::Route"))
        .filter(|r| r["Properties"]["RouteKey"].as_str() == Some("$default"))
        .map(|r| match &r["Properties"]["Target"] {
            Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
            other => other.as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    assert_eq!(
        default_targets,
        vec!["integrations/${WebhookIntegration}".to_owned()],
        "one $default route, to the webhook function"
    );
}

#[test]
fn in_progress_claims_outlive_the_function_that_holds_them() {
    // A claim that expires while its holder still works can be taken over, and both enqueue.
    let template = Template::load();
    for function in FUNCTIONS {
        let expiry: u64 = template.environment(function)["TCRELAY_IN_PROGRESS_EXPIRY_SECONDS"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("a number of seconds, written in the template");
        let timeout = template.root["Resources"][function]["Properties"]["Timeout"]
            .as_u64()
            .expect("the function's Timeout");
        assert!(
            expiry > timeout,
            "{function}: in-progress expiry {expiry} s is not above its timeout {timeout} s"
        );
    }
}

#[test]
fn every_number_a_parameter_allows_passes_the_functions_settings() {
    // A parameter that accepts more than the code would deploy cleanly and then fail every
    // cold start. Each numeric parameter a function reads needs both bounds, and both ends
    // must pass the function's own parser.
    let template = Template::load();
    let parameters = template.root["Parameters"]
        .as_mapping()
        .expect("parameters");
    let required = [(
        "WebhookSecretArn",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tradecloud-webhook-AbCdEf",
    )];
    let mut checked = 0;
    for (name, parameter) in parameters {
        let name = name.as_str().expect("parameter name");
        if parameter["Type"].as_str() != Some("Number") {
            continue;
        }
        for function in FUNCTIONS {
            let uses = template.environment(function).values().any(|v| {
                matches!(v, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some(name))
            });
            if !uses {
                continue;
            }
            for bound in ["MinValue", "MaxValue"] {
                let value = parameter[bound]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{name} feeds {function} but has no {bound}"))
                    .to_string();
                let mut overrides: BTreeMap<&str, &str> = required.into_iter().collect();
                overrides.insert(name, &value);
                // Panics with the parser's own message when the value is refused.
                reads(function, &template.resolved(function, &overrides));
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} bounds checked");
}
