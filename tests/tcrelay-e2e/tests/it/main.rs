//! End-to-end tests: the SAM template's environment, parameters and alarms, and the webhook over the simulator and
//! moto.
//!
//! One test binary for the package's integration tests: each binary links every dependency
//! again, so one instead of several cuts the link time of `cargo test`.

mod template_alarms;
mod template_env;
mod template_grants;
mod template_parameters;
mod webhook_get_on_sim;
mod webhook_on_moto;
