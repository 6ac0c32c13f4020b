//! API Gateway's view of a function's answer: the HTTP API (payload format 2.0) response a
//! function behind API Gateway returns, decoded as API Gateway decodes it.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;

/// The HTTP response API Gateway makes of a function's answer in payload format 2.0:
/// `{"statusCode": …, "headers": {…}, "body": "…", "isBase64Encoded": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiGatewayResponse {
    /// `statusCode`.
    pub status: u16,
    /// `headers`, as the function named them (empty when it sent none).
    pub headers: BTreeMap<String, String>,
    /// `body`, base64-decoded when `isBase64Encoded` is true (empty when there is none).
    pub body: Vec<u8>,
}

/// Why an answer is not an API Gateway response.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("not an API Gateway response ({reason}): {response}")]
pub struct ApiGatewayResponseError {
    /// What is wrong with it.
    pub reason: String,
    /// The answer as the function gave it.
    pub response: Value,
}

impl ApiGatewayResponse {
    /// Decodes a function's answer ([`crate::Invocation::response`]). Fails when `statusCode`
    /// is missing or not a status, `headers` is not an object of strings, `body` is not a
    /// string, or a base64 body does not decode.
    pub fn from_response(response: &Value) -> Result<Self, ApiGatewayResponseError> {
        let fail = |reason: String| ApiGatewayResponseError {
            reason,
            response: response.clone(),
        };
        let status = response["statusCode"]
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| fail("no statusCode".into()))?;
        let headers = match &response["headers"] {
            Value::Null => BTreeMap::new(),
            Value::Object(headers) => headers
                .iter()
                .map(|(name, value)| match value.as_str() {
                    Some(value) => Ok((name.clone(), value.to_owned())),
                    None => Err(fail(format!("header {name} is not a string"))),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(fail("headers is not an object".into())),
        };
        let text = match &response["body"] {
            Value::Null => "",
            Value::String(text) => text.as_str(),
            _ => return Err(fail("body is not a string".into())),
        };
        let body = if response["isBase64Encoded"] == true {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| fail(format!("body is not base64: {e}")))?
        } else {
            text.as_bytes().to_vec()
        };
        Ok(Self {
            status,
            headers,
            body,
        })
    }

    /// The body as JSON; `Value::Null` when it is not JSON, so that a test's next assertion on
    /// a field fails and prints it.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_plain_body_is_taken_as_it_is() {
        let response = ApiGatewayResponse::from_response(&json!({
            "statusCode": 202,
            "headers": {"content-type": "application/json"},
            "body": "{\"outcome\":\"enqueued\"}",
            "isBase64Encoded": false,
        }))
        .unwrap();
        assert_eq!(response.status, 202);
        assert_eq!(
            response.headers,
            BTreeMap::from([("content-type".into(), "application/json".into())])
        );
        assert_eq!(response.body, b"{\"outcome\":\"enqueued\"}");
        assert_eq!(response.json(), json!({"outcome": "enqueued"}));
    }

    #[test]
    fn a_base64_body_is_decoded() {
        let response = ApiGatewayResponse::from_response(&json!({
            "statusCode": 200,
            "body": "eyJvayI6dHJ1ZX0=",
            "isBase64Encoded": true,
        }))
        .unwrap();
        assert_eq!(response.status, 200);
        assert!(response.headers.is_empty());
        assert_eq!(response.body, b"{\"ok\":true}");
        assert_eq!(response.json(), json!({"ok": true}));
    }

    #[test]
    fn no_body_is_empty_and_a_body_that_is_not_json_has_null_json() {
        let empty = ApiGatewayResponse::from_response(&json!({"statusCode": 204})).unwrap();
        assert!(empty.body.is_empty());
        assert_eq!(empty.json(), Value::Null);
        let text =
            ApiGatewayResponse::from_response(&json!({"statusCode": 401, "body": "no"})).unwrap();
        assert_eq!(text.body, b"no");
        assert_eq!(text.json(), Value::Null);
    }

    #[test]
    fn answers_that_are_not_api_gateway_responses_are_refused() {
        let missing = json!({"body": "{}"});
        let error = ApiGatewayResponse::from_response(&missing).unwrap_err();
        assert_eq!(error.response, missing);
        assert!(error.to_string().contains("no statusCode"), "{error}");
        for (response, reason) in [
            (json!({"statusCode": 70000}), "no statusCode"),
            (json!({"statusCode": "200"}), "no statusCode"),
            (
                json!({"statusCode": 200, "headers": {"x": 1}}),
                "header x is not a string",
            ),
            (
                json!({"statusCode": 200, "body": "%%", "isBase64Encoded": true}),
                "body is not base64",
            ),
            (
                json!({"statusCode": 200, "body": {}}),
                "body is not a string",
            ),
        ] {
            let error = ApiGatewayResponse::from_response(&response).unwrap_err();
            assert!(error.reason.starts_with(reason), "{response}: {error}");
        }
    }
}
