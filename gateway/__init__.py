"""The one door to LLM providers: concurrency limits, retries, cache, cost and latency. Only here is litellm imported."""
