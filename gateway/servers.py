"""What an OpenAI-compatible server says about itself. A llama.cpp server (and `make local-judge`) answers
`GET /props` with `total_slots`: the requests it works on at once. Sending more only queues them behind its
slots, where they time out; callers size their concurrency by it."""
from __future__ import annotations

import json
import urllib.request


def server_slots(api_base: str, timeout_s: float = 2.0) -> int | None:
    """`total_slots` from `/props` beside `api_base` (`http://host:port/v1` → `http://host:port/props`), or None
    when the server does not say (a hosted provider, or a server without the endpoint)."""
    root = api_base.rstrip("/")
    root = root[: -len("/v1")] if root.endswith("/v1") else root
    try:
        with urllib.request.urlopen(f"{root}/props", timeout=timeout_s) as resp:
            slots = json.loads(resp.read()).get("total_slots")
    except (OSError, ValueError, AttributeError):
        return None
    return slots if isinstance(slots, int) and slots > 0 else None
