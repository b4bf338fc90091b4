-- The health view reads each provider's newest call (latency, first token, output mode).
CREATE INDEX model_calls_by_provider ON model_calls(provider, created_ms);
