//! Observability: the per-request log line and Prometheus metrics.

pub mod log;
pub mod metrics;
