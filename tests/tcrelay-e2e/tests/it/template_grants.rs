//! What the SAM template lets each function do, and what reaches the webhook, against what the
//! code needs: IAM grants for every call the functions make at start-up and no more where the
//! code says how far, a route for every path, parameter ranges the functions accept, and
//! in-progress claims that outlive the function holding them.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use crate::template_env::{Template, parse, reads};

const FUNCTIONS: [&str; 2] = ["WebhookFunction", "PollerFunction"];

/// A value or a list of values, as IAM writes `Action` and `Resource`.
fn one_or_many(value: &Value) -> Vec<Value> {
    match value {
        Value::Sequence(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The name of the `AWS::IAM::Role` resource the function runs as: its `Role` is `!GetAtt
/// NAME.Arn` of one in the template. Without it SAM generates a role of its own, with the
/// managed `AWSLambdaBasicExecutionRole` (logs on every log group of the account) attached.
fn role(template: &Template, function: &str) -> String {
    let role = &template.root["Resources"][function]["Properties"]["Role"];
    let Value::Tagged(tagged) = role else {
        panic!("{function} has no Role of the template's own (SAM generates one: {role:?})");
    };
    let name = tagged
        .value
        .as_str()
        .and_then(|v| v.strip_suffix(".Arn"))
        .filter(|_| tagged.tag == "GetAtt")
        .unwrap_or_else(|| panic!("{function}: Role is not !GetAtt ROLE.Arn: {role:?}"));
    assert_eq!(
        template.root["Resources"][name]["Type"].as_str(),
        Some("AWS::IAM::Role"),
        "{function}'s role {name}"
    );
    name.to_owned()
}

/// The function's policy statements: every inline policy of the role it runs as.
fn statements(template: &Template, function: &str) -> Vec<Value> {
    let role = role(template, function);
    let policies = &template.root["Resources"][role.as_str()]["Properties"]["Policies"];
    one_or_many(policies)
        .iter()
        .flat_map(|policy| one_or_many(&policy["PolicyDocument"]["Statement"]))
        .flat_map(|statement| match &statement {
            // `!If [condition, statement, !Ref AWS::NoValue]`: the statement when it is there.
            Value::Tagged(t) if t.tag == "If" => one_or_many(&t.value[1]),
            _ => vec![statement],
        })
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

/// Whether `value` is `!GetAtt RESOURCE.ATTRIBUTE`.
fn is_get_att(value: &Value, resource: &str, attribute: &str) -> bool {
    matches!(value, Value::Tagged(t) if t.tag == "GetAtt"
        && t.value.as_str() == Some(&format!("{resource}.{attribute}")))
}

/// Least privilege: each function runs as a role of the template's own, with no managed
/// policy (SAM's generated role attaches `AWSLambdaBasicExecutionRole`, which may create log
/// groups and write to every one of the account) and no grant on `*`, on every resource of a
/// service, or of every action of one: each statement names the resources it is for.
#[test]
fn no_function_may_act_on_everything() {
    let template = Template::load();
    for function in FUNCTIONS {
        let properties = &template.root["Resources"][function]["Properties"];
        assert!(
            properties.get("Policies").is_none(),
            "{function}: Policies on the function make SAM generate a role with the managed \
             AWSLambdaBasicExecutionRole; grant on the function's own role"
        );
        let role = role(&template, function);
        let role_properties = &template.root["Resources"][role.as_str()]["Properties"];
        assert!(
            role_properties.get("ManagedPolicyArns").is_none(),
            "{role}: a managed policy grants beyond the function's own resources"
        );
        let statements = statements(&template, function);
        assert!(statements.len() >= 4, "{function}: {statements:?}");
        for statement in &statements {
            let sid = statement["Sid"].as_str().unwrap_or("a statement");
            assert_eq!(
                statement["Effect"].as_str(),
                Some("Allow"),
                "{function} {sid}"
            );
            for action in one_or_many(&statement["Action"]) {
                let action = action.as_str().expect("actions are written out");
                assert!(
                    !action.contains('*'),
                    "{function} {sid}: {action} grants every action that matches"
                );
            }
            let resources = match &statement["Resource"] {
                Value::Tagged(t) if t.tag == "If" => {
                    let mut both = one_or_many(&t.value[1]);
                    both.extend(one_or_many(&t.value[2]));
                    both
                }
                other => one_or_many(other),
            };
            assert!(!resources.is_empty(), "{function} {sid}: no Resource");
            for resource in resources {
                let text = match &resource {
                    Value::String(s) => s.clone(),
                    Value::Tagged(t) => t.value.as_str().unwrap_or_default().to_owned(),
                    other => panic!("{function} {sid}: resource {other:?}"),
                };
                assert!(
                    text != "*" && !text.contains(":*:") && !text.ends_with(":*"),
                    "{function} {sid}: {resource:?} is every resource of its kind"
                );
            }
        }
    }
}

/// Each function logs to a log group of the template's own, with a retention (the one Lambda
/// would create keeps logs forever), and may write only there: create streams in it and put
/// events on them, not create log groups or write to another function's.
#[test]
fn each_function_may_write_only_its_own_log_group() {
    let template = Template::load();
    let mut groups = Vec::new();
    for function in FUNCTIONS {
        let logging = &template.root["Resources"][function]["Properties"]["LoggingConfig"];
        let group = match &logging["LogGroup"] {
            Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().expect("a name").to_owned(),
            other => {
                panic!("{function}: LoggingConfig.LogGroup is not !Ref of a log group: {other:?}")
            }
        };
        let resource = &template.root["Resources"][group.as_str()];
        assert_eq!(
            resource["Type"].as_str(),
            Some("AWS::Logs::LogGroup"),
            "{group}"
        );
        assert!(
            resource["Properties"]["RetentionInDays"].as_u64().is_some(),
            "{group} keeps its logs forever"
        );
        assert!(!groups.contains(&group), "{group} shared by two functions");
        groups.push(group.clone());

        let statements = statements(&template, function);
        let log_actions: Vec<String> = statements
            .iter()
            .flat_map(|s| one_or_many(&s["Action"]))
            .filter_map(|a| a.as_str().map(str::to_owned))
            .filter(|a| a.starts_with("logs:"))
            .collect();
        assert_eq!(
            log_actions,
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            "{function}: the log actions Lambda needs for a group that exists, and no more"
        );
        for statement in statements.iter().filter(|s| {
            one_or_many(&s["Action"])
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.starts_with("logs:")))
        }) {
            let resources = one_or_many(&statement["Resource"]);
            assert!(
                !resources.is_empty() && resources.iter().all(|r| is_get_att(r, &group, "Arn")),
                "{function} may write logs beyond {group}: {resources:?}"
            );
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
fn the_poller_may_write_object_states_and_its_cursors_and_no_message_key() {
    let template = Template::load();
    let writes: Vec<Value> = statements(&template, "PollerFunction")
        .into_iter()
        .filter(|s| grants(s, "dynamodb:PutItem"))
        .collect();
    assert_eq!(writes.len(), 1, "one statement grants the poller's writes");
    let patterns: Vec<String> =
        one_or_many(&writes[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
            .iter()
            .map(|p| p.as_str().expect("a pattern").to_owned())
            .collect();
    let mut wanted: Vec<String> = tcrelay_core::dedupe::OBJECT_KEY_PREFIXES
        .iter()
        .map(|prefix| format!("{prefix}*"))
        .collect();
    wanted.push(format!("{}*", tcrelay_aws::cursor::CURSOR_KEY_PREFIX));
    assert_eq!(patterns, wanted);
}

/// The routes by key, with their properties.
fn routes(template: &Template) -> Vec<(String, Value)> {
    template.root["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::ApiGatewayV2::Route"))
        .map(|r| {
            (
                r["Properties"]["RouteKey"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["Properties"].clone(),
            )
        })
        .collect()
}

#[test]
fn in_entra_id_mode_every_order_route_checks_the_token() {
    // Tradecloud's OAuth2 mode covers order and order-document integrations, GET as well as
    // POST: a route without the authorizer would refuse their tokens (401, dropped).
    let template = Template::load();
    let mut checked = Vec::new();
    for (key, properties) in routes(&template) {
        let path = key.split_once(' ').map_or("", |(_, path)| path);
        if !(path.starts_with("/webhook/orders") || path.starts_with("/webhook/order-documents")) {
            continue;
        }
        checked.push(key.clone());
        let Value::Tagged(by_mode) = &properties["AuthorizationType"] else {
            panic!("{key}: no authorizer in Entra ID mode");
        };
        assert_eq!(by_mode.tag, "If", "{key}");
        assert_eq!(by_mode.value[0].as_str(), Some("UseEntraId"), "{key}");
        assert_eq!(by_mode.value[1].as_str(), Some("JWT"), "{key}");
    }
    // The order routes are there to check (a renamed path would otherwise check nothing).
    checked.sort();
    assert_eq!(
        checked,
        [
            "GET /webhook/orders",
            "GET /webhook/orders/{orderId}",
            "POST /webhook/order-documents",
            "POST /webhook/orders",
        ]
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

/// The one parameter without a default, set as a deployment would set it.
const REQUIRED: [(&str, &str); 1] = [(
    "WebhookSecretArn",
    "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tradecloud-webhook-AbCdEf",
)];

#[test]
fn every_number_a_parameter_allows_passes_the_functions_settings() {
    // A parameter that accepts more than the code would deploy cleanly and then fail every
    // cold start. Each numeric parameter a function reads needs both bounds, and both ends
    // must pass the function's own parser.
    let template = Template::load();
    let parameters = template.root["Parameters"]
        .as_mapping()
        .expect("parameters");
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
                let mut overrides: BTreeMap<&str, &str> = REQUIRED.into_iter().collect();
                overrides.insert(name, &value);
                // Panics with the parser's own message when the value is refused.
                reads(function, &template.resolved(function, &overrides));
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} bounds checked");
}

#[test]
fn every_value_a_parameter_lists_passes_the_functions_settings_or_a_rule_refuses_it() {
    // The same for the listed values of the string parameters: one the code refuses on its own
    // (with every other parameter at its default) would deploy cleanly and then fail every cold
    // start, unless a rule refuses that combination at deploy time, naming both parameters.
    let template = Template::load();
    let parameters = template.root["Parameters"]
        .as_mapping()
        .expect("parameters");
    let rules: Vec<String> = template.root["Rules"]
        .as_mapping()
        .expect("rules")
        .values()
        .map(|rule| serde_yaml_ng::to_string(rule).unwrap())
        .collect();
    let mut checked = 0;
    for (name, parameter) in parameters {
        let name = name.as_str().expect("parameter name");
        let Some(allowed) = parameter["AllowedValues"].as_sequence() else {
            continue;
        };
        for function in FUNCTIONS {
            let environment = template.environment(function);
            let fed_by = |param: &str| {
                environment
                    .iter()
                    .filter(|(_, v)| {
                        matches!(v, Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some(param))
                    })
                    .map(|(var, _)| var.clone())
                    .collect::<Vec<_>>()
            };
            if fed_by(name).is_empty() {
                continue;
            }
            for value in allowed {
                let value = value.as_str().expect("allowed values are strings");
                let mut overrides: BTreeMap<&str, &str> = REQUIRED.into_iter().collect();
                overrides.insert(name, value);
                checked += 1;
                let Err(refusal) = parse(function, &template.resolved(function, &overrides)) else {
                    continue;
                };
                // The parameter whose variable the refusal names: the other half of the pair.
                let other = parameters
                    .keys()
                    .filter_map(|k| k.as_str())
                    .find(|param| {
                        fed_by(param)
                            .iter()
                            .any(|var| refusal.contains(var.as_str()))
                    })
                    .unwrap_or_else(|| {
                        panic!("{name}={value:?}: {function} refuses it ({refusal}), naming no parameter's variable")
                    });
                assert!(
                    rules
                        .iter()
                        .any(|rule| rule.contains(name) && rule.contains(other)),
                    "{name}={value:?} deploys, then {function} fails every cold start \
                     ({refusal}): no rule ties {other} to {name}"
                );
            }
        }
    }
    assert!(checked >= 8, "only {checked} values checked");
}

/// A queue's `MessageRetentionPeriod` in seconds.
fn retention(template: &Template, queue: &str) -> u64 {
    template.root["Resources"][queue]["Properties"]["MessageRetentionPeriod"]
        .as_u64()
        .unwrap_or_else(|| panic!("{queue} has no retention"))
}

fn parameter(template: &Template, name: &str, field: &str) -> u64 {
    template.root["Parameters"][name][field]
        .as_u64()
        .unwrap_or_else(|| panic!("{name} has no {field}"))
}

#[test]
fn no_claim_check_payload_expires_before_its_pointer() {
    // A FIFO message moved to the dead-letter queue starts its retention again there.
    let template = Template::load();
    let longest = retention(&template, "EventQueue") + retention(&template, "EventDeadLetterQueue");
    for field in ["MinValue", "Default"] {
        let days = parameter(&template, "ClaimCheckExpiryDays", field);
        assert!(
            days * 86_400 > longest,
            "ClaimCheckExpiryDays {field} {days} days: a message can live {longest} s"
        );
    }
}

#[test]
fn a_short_erp_outage_does_not_empty_the_queue_into_the_dead_letter_queue() {
    let template = Template::load();
    let visibility = parameter(&template, "QueueVisibilityTimeoutSeconds", "Default");
    let receives = parameter(&template, "QueueMaxReceiveCount", "Default");
    let queue = &template.root["Resources"]["EventQueue"]["Properties"];
    let by_ref = |v: &Value| match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str().map(str::to_owned),
        _ => None,
    };
    assert_eq!(
        by_ref(&queue["VisibilityTimeout"]).as_deref(),
        Some("QueueVisibilityTimeoutSeconds")
    );
    assert_eq!(
        by_ref(&queue["RedrivePolicy"]["maxReceiveCount"]).as_deref(),
        Some("QueueMaxReceiveCount")
    );
    assert!(
        visibility >= 300,
        "a Lambda consumer needs room: {visibility} s"
    );
    assert!(
        visibility * receives >= 3600,
        "an outage of {} s moves messages to the dead-letter queue",
        visibility * receives
    );
}

#[test]
fn every_queue_alarms_before_its_messages_expire() {
    let template = Template::load();
    let resources = template.root["Resources"].as_mapping().expect("resources");
    for (name, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::SQS::Queue") {
            continue;
        }
        let name = name.as_str().expect("a name");
        let watched = resources.values().any(|alarm| {
            let p = &alarm["Properties"];
            alarm["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
                && p["MetricName"].as_str() == Some("ApproximateAgeOfOldestMessage")
                && matches!(&p["Dimensions"][0]["Value"],
                    Value::Tagged(t) if t.tag == "GetAtt"
                        && t.value.as_str() == Some(&format!("{name}.QueueName")))
                && match &p["Threshold"] {
                    Value::Number(n) => n.as_u64().is_some_and(|t| t < retention(&template, name)),
                    Value::Tagged(t) if t.tag == "Ref" => {
                        let param = t.value.as_str().unwrap_or_default();
                        parameter(&template, param, "Default") < retention(&template, name)
                    }
                    _ => false,
                }
        });
        assert!(watched, "no alarm on the age of {name}'s oldest message");
    }
}

#[test]
fn alarms_can_be_delivered() {
    // CloudWatch cannot publish to a topic under the AWS-managed SNS key (its policy cannot
    // grant CloudWatch): every alarm would be silent.
    let template = Template::load();
    let topic = &template.root["Resources"]["AlarmTopic"]["Properties"];
    assert!(
        topic["KmsMasterKeyId"].as_str() != Some("alias/aws/sns"),
        "the alarm topic is under alias/aws/sns"
    );
    assert_eq!(
        template.root["Resources"]["AlarmTopic"]["Type"].as_str(),
        Some("AWS::SNS::Topic")
    );
}

#[test]
fn the_deployment_settings_that_bit_before_stay_fixed() {
    let template = Template::load();
    let poller = &template.root["Resources"]["PollerFunction"]["Properties"];
    // SAM reads a Schedule's Enabled as a plain boolean: an !If there is always true.
    let schedule = &poller["Events"]["Schedule"]["Properties"];
    assert!(schedule.get("Enabled").is_none(), "use State, not Enabled");
    assert!(matches!(&schedule["State"], Value::Tagged(t) if t.tag == "If"));
    // A literal reservation fails the deployment on accounts with a low concurrency quota.
    assert!(
        !matches!(poller["ReservedConcurrentExecutions"], Value::Number(_)),
        "the poller's reserved concurrency is a literal"
    );
    // No X-Ray: neither function traces, and Tracing grants its write policy.
    assert!(
        template.root["Globals"]["Function"]
            .get("Tracing")
            .is_none(),
        "Tracing set without traces"
    );
    // Deploy-time checks of the parameter pairs every run would otherwise fail on.
    let rules: Vec<String> = template.root["Rules"]
        .as_mapping()
        .expect("rules")
        .values()
        .map(|rule| serde_yaml_ng::to_string(rule).unwrap())
        .collect();
    for (when, then) in [
        ("PollStreams", "PollStart"),
        ("PollStreams", "TradecloudSecretArn"),
        ("EntraIdIssuer", "EntraIdAudience"),
        // Entra ID gives any application of the tenant a token for the audience.
        ("EntraIdIssuer", "EntraIdClientId"),
    ] {
        // Both in one rule, not each anywhere in the block.
        assert!(
            rules
                .iter()
                .any(|rule| rule.contains(when) && rule.contains(then)),
            "no rule ties {then} to {when}: {rules:?}"
        );
    }
    for output in [
        "EventQueueArn",
        "DeadLetterQueueArn",
        "ClaimCheckBucketArn",
        "AlarmTopicArn",
    ] {
        assert!(
            template.root["Outputs"].get(output).is_some(),
            "no {output} output"
        );
    }
}
