//! Sample events kept as JSON files, read for an invocation.

use std::path::Path;

use serde_json::Value;

/// The JSON event in the file at `path` (for example one of a repository's `events/*.json`,
/// the same files `sam local invoke` or `cargo lambda invoke` are fed).
///
/// # Panics
///
/// When the file cannot be read or is not JSON, with the path and the reason: a test that
/// names a missing or broken sample has nothing to go on, and the message says which file.
pub fn read_event(path: impl AsRef<Path>) -> Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read the event {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("the event {} is not JSON: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    /// A file of its own in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(text: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "lambda-emulator-event-{}.json",
                uuid::Uuid::new_v4()
            ));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn an_event_file_is_read_as_json() {
        let file = TempFile::with(r#"{"version": "2.0", "rawPath": "/webhook"}"#);
        assert_eq!(
            read_event(&file.0),
            json!({"version": "2.0", "rawPath": "/webhook"})
        );
    }

    #[test]
    fn a_broken_event_file_panics_naming_it_and_the_parse_error() {
        let file = TempFile::with("{\"version\": ");
        let panic = std::panic::catch_unwind(|| read_event(&file.0)).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains(&file.0.display().to_string()), "{message}");
        assert!(message.contains("EOF"), "{message}");
    }

    #[test]
    fn a_missing_event_file_panics_naming_it() {
        let panic =
            std::panic::catch_unwind(|| read_event("/nonexistent/events/x.json")).unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(message.contains("/nonexistent/events/x.json"), "{message}");
    }
}
