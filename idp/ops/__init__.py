"""What operators and their tools read: health and readiness probes, the Prometheus metrics,
and the per-request id and access log (docs/observability.md)."""
