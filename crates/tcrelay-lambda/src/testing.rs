//! Helpers for the functions' tests (feature `testing`).

use serde_json::Value;

/// The names of the metrics an EMF directive (one entry of `_aws.CloudWatchMetrics` in an
/// embedded-metric-format line) declares, in order. Panics when the directive has no `Metrics`
/// array of named metrics, which fails the test that asked.
pub fn emf_metric_names(directive: &Value) -> Vec<&str> {
    directive["Metrics"]
        .as_array()
        .expect("an EMF directive has a Metrics array")
        .iter()
        .map(|metric| metric["Name"].as_str().expect("an EMF metric has a Name"))
        .collect()
}
