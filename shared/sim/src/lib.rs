//! A Tradecloud simulator over HTTP: the API, a changing world of orders and shipments, and the webhook sender.
