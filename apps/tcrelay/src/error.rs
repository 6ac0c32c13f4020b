//! The operator commands' error, in a module of its own so the commands ([`crate::ops`]) and
//! the replay they call ([`crate::replay`]) both use it without importing each other.

use tcrelay_core::ports::StoreError;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// The database could not be opened.
    #[error(transparent)]
    Open(#[from] tcrelay_sqlite::OpenError),
    /// An argument is not usable.
    #[error("{0}")]
    Invalid(String),
}
