//! HTTP endpoint (`--listen`): /metrics, /inventory, /healthz. Placeholder until it lands (issue 6).
