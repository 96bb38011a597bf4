//! Sink, Alertmanager (`--alertmanager URL`). Placeholder until it lands (issue 6).
