//! HTTP client for Tradecloud's API v2: JWT login and refresh, fetch by id, poll.
