"""Price per token: the candidate's override first, else LiteLLM's price map, else unknown (None, never 0).

The map is read from the JSON file LiteLLM ships (`model_prices_and_context_window_backup.json`) without
importing LiteLLM itself, which takes seconds. A custom OpenAI-compatible server (`api_base` set on an
`openai/` or `hosted_vllm/` model) is not the provider the map describes, so it gets no price from the map.
"""
from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from gateway.routing import provider_of, uses_light_path

_MAP_FILE = "model_prices_and_context_window_backup.json"


@lru_cache(maxsize=1)
def price_map() -> dict[str, dict]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / _MAP_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@lru_cache(maxsize=1024)
def map_price(model: str) -> tuple[float, float] | None:
    """(USD per input token, USD per output token) from LiteLLM's map, or None when the model is not in it."""
    prices = price_map()
    provider = provider_of(model)
    name = model.split("/", 1)[1] if "/" in model else model
    for key in (model, name):
        entry = prices.get(key)
        if not entry:
            continue
        if key == name and "/" in model and not str(entry.get("litellm_provider", "")).startswith(provider):
            continue
        inp, out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if inp is not None and out is not None:
            return float(inp), float(out)
    return None


def per_token_prices(
    model: str, api_base: str | None, input_per_mtok: float | None, output_per_mtok: float | None
) -> tuple[float, float] | None:
    if input_per_mtok is not None and output_per_mtok is not None:
        return input_per_mtok / 1e6, output_per_mtok / 1e6
    if api_base and uses_light_path(model, api_base):
        return None
    return map_price(model)


def cost_usd(prices: tuple[float, float] | None, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    if prices is None or prompt_tokens is None or completion_tokens is None:
        return None
    return prompt_tokens * prices[0] + completion_tokens * prices[1]
