//! Where settings are read from: the [`Env`] every settings parser takes, the
//! [`RecordingEnv`] that tells which variables a function reads (the deployment template must
//! set exactly those), the small readers the parsers share, and the one error every settings
//! reader of every crate returns, [`ConfigError`]. The readers of each section import this
//! module; it imports none of them.
//!
//! An empty value counts as unset, because templates pass `""` for optional parameters.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// A setting that stops start-up. The message always names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{var} is required but not set")]
    Missing {
        /// The variable.
        var: &'static str,
    },
    /// A variable has a value we cannot use.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong, without the value when it is a secret.
        reason: String,
    },
    /// Neither plain-text nor Secrets Manager webhook credentials: the webhook would be open.
    #[error(
        "no webhook credential: set TCRELAY_WEBHOOK_BASIC and/or TCRELAY_WEBHOOK_BEARER, \
         or TCRELAY_WEBHOOK_SECRET_ARN (an open webhook is refused)"
    )]
    NoWebhookCredential,
}

/// A source of environment variables. `main` passes `std::env::vars().collect()` (a
/// `HashMap<String, String>`), tests pass a map of their own.
pub trait Env {
    /// The raw value of `name`, if set.
    fn var(&self, name: &str) -> Option<&str>;
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// An [`Env`] that remembers every variable asked for, set or not.
pub struct RecordingEnv<'a> {
    inner: &'a dyn Env,
    asked: Mutex<BTreeSet<String>>,
}

impl<'a> RecordingEnv<'a> {
    /// Records the reads from `inner`.
    pub fn new(inner: &'a dyn Env) -> Self {
        Self {
            inner,
            asked: Mutex::new(BTreeSet::new()),
        }
    }

    /// The names asked for so far.
    pub fn asked(&self) -> BTreeSet<String> {
        self.asked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Env for RecordingEnv<'_> {
    fn var(&self, name: &str) -> Option<&str> {
        self.asked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.to_owned());
        self.inner.var(name)
    }
}

/// A map of variables from `(name, value)` pairs: the [`Env`] of a test or an example.
pub fn env_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The trimmed value of `var`, or `None` when unset or blank.
pub fn get<'a>(env: &'a dyn Env, var: &str) -> Option<&'a str> {
    env.var(var).map(str::trim).filter(|v| !v.is_empty())
}

/// The value of a credential variable as set but for line breaks at its ends (a password must
/// match its other side's, spaces included; a line break is an artefact of how the file was
/// written), or `None` when unset or blank. Spaces at either end are kept and warned about
/// (without the value), as they are more likely a slip than part of the secret.
pub fn credential<'a>(env: &'a dyn Env, var: &str) -> Option<&'a str> {
    let value = env
        .var(var)
        .map(|v| v.trim_matches(['\r', '\n']))
        .filter(|v| !v.trim().is_empty())?;
    if value.trim() != value {
        tracing::warn!(
            variable = var,
            "a value that begins or ends with spaces is used as given, spaces included"
        );
    }
    Some(value)
}

/// The value of a variable that must be set.
pub fn required(env: &dyn Env, var: &'static str) -> Result<String, ConfigError> {
    get(env, var)
        .map(str::to_owned)
        .ok_or(ConfigError::Missing { var })
}

/// A whole non-negative number, `default` when unset.
pub fn number(env: &dyn Env, var: &'static str, default: u64) -> Result<u64, ConfigError> {
    match get(env, var) {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
            var,
            reason: format!("{text:?} is not a whole non-negative number"),
        }),
    }
}

/// Checks that `url` is an http(s) URL.
pub fn http_url(var: &'static str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: format!("{} is not an http(s) URL", shown_url(url)),
        })
    }
}

/// `url` as a settings error may show it: without the user name and password a URL may carry
/// (`https://user:secret@host/`), which must reach no log. A text with an `@` left in it after
/// that (one that is no URL, or whose `@` is not read as a user name's end) is not shown at
/// all, since a credential in it cannot be told apart.
fn shown_url(url: &str) -> String {
    let shown = match url::Url::parse(url) {
        Ok(mut parsed) => {
            // Both only fail for URLs that cannot hold a user name, which then hold none.
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().to_owned()
        }
        Err(_) => url.to_owned(),
    };
    if shown.contains('@') {
        "the URL (not shown: it may hold a credential)".to_owned()
    } else {
        format!("{shown:?}")
    }
}

/// Checks that `url` is an https URL, or an http one to this machine (a simulator, a local
/// proxy): a login sent over plain http to another host crosses the network in clear text.
pub fn https_url_unless_local(var: &'static str, url: &str) -> Result<(), ConfigError> {
    http_url(var, url)?;
    // Parsed as the HTTP client parses it (the `url` crate, by the WHATWG rules): a hand-made
    // split read `http://host\@localhost/` as local while the client sends to `host`.
    let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
        var,
        reason: format!("{} is not a URL: {e}", shown_url(url)),
    })?;
    if parsed.scheme() == "https" {
        return Ok(());
    }
    let local = match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if local {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            var,
            reason: format!(
                "{} is plain http to another host, which would send the login in clear text: \
                 use https",
                shown_url(url)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "https://api.tradecloud1.com/v2",
            "http://127.0.0.1:7001/v2",
            "http://localhost/v2",
            "http://[::1]:8080/v2",
            "http://127.1.2.3",
        ] {
            assert!(https_url_unless_local("V", ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://api.tradecloud1.com/v2",
            "http://10.0.0.1/v2",
            "http://127.0.0.1.evil.example/v2",
            "http://localhost.example.com/v2",
            "http://user@api.tradecloud1.com/v2",
            "http://api.tradecloud1.com\\@localhost/v2",
            "http://api.tradecloud1.com\\@127.0.0.1:7001/v2",
            "http://api.tradecloud1.com#@localhost/v2",
            "ftp://127.0.0.1/",
        ] {
            let err = https_url_unless_local("V", refused).unwrap_err();
            assert!(err.to_string().contains("V"), "{refused}: {err}");
        }
    }

    /// A URL may carry a user name and password; the error that refuses it names the URL for
    /// the operator, but never them.
    #[test]
    fn urls_in_setting_errors_carry_no_credential() {
        for refused in [
            "http://tc-user:pa55word@api.tradecloud1.com/v2",
            "ftp://tc-user:pa55word@127.0.0.1/",
            "http://tc-user:pa55word@[::1/v2",
            "api.tradecloud1.com:pa55word@x",
        ] {
            let err = https_url_unless_local("V", refused)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("pa55word"), "{refused}: {err}");
            assert!(!err.contains("tc-user"), "{refused}: {err}");
            assert!(err.contains("V"), "{refused}: {err}");
        }
        let err = https_url_unless_local("V", "http://u:pa55word@example.com/v2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"http://example.com/v2\""), "{err}");
    }

    #[test]
    fn blank_is_unset_and_reads_are_recorded() {
        let map: HashMap<String, String> = [("A", " x "), ("B", "  ")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let env = RecordingEnv::new(&map);
        assert_eq!(get(&env, "A"), Some("x"));
        assert_eq!(get(&env, "B"), None);
        assert_eq!(get(&env, "C"), None);
        assert_eq!(env.asked().into_iter().collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(number(&env, "C", 7), Ok(7));
        assert!(matches!(
            number(&env, "A", 7),
            Err(ConfigError::Invalid { var: "A", .. })
        ));
        assert_eq!(required(&env, "B"), Err(ConfigError::Missing { var: "B" }));
    }
}
