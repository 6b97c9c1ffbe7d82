//! Prometheus metrics: atomic counters and histograms, text exposition format 0.0.4.
