//! The relay core: envelope, dedupe rules, event filter, ports, webhook router and poll loop.
