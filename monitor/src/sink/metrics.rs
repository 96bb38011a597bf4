//! Sink, Prometheus metrics. Placeholder until it lands (issue 6).
