//! Observability: the per-request log line and other log lines (`log`), the secret
//! redaction every line passes through (`redact`), Prometheus metrics (`metrics`), the
//! last minute's request count behind `cc-relay status`' req/s (`rolling`) and the
//! RFC 3339 time formatting they share (`time`). Nothing here opens a socket: the server
//! serves `/metrics` by calling `Metrics::render`.

pub mod log;
pub mod metrics;
pub mod redact;
pub mod rolling;
pub mod time;
