//! The poller function's testable parts: the Tradecloud client as a [`tcrelay_poll::PollApi`],
//! and the Lambda event handling.
