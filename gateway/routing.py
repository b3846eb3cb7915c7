"""Which path a model string takes, which environment variable holds its key, and how keys are kept out of text."""
from __future__ import annotations

import os
import re

# OpenAI-compatible servers that get the direct HTTP path when an api_base is given (see gateway/client.py).
LIGHT_PROVIDERS = ("openai", "hosted_vllm", "lm_studio", "llamafile")

_DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "azure": "AZURE_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "hosted_vllm": "HOSTED_VLLM_API_KEY",
    "bedrock": "AWS_ACCESS_KEY_ID",
    "xai": "XAI_API_KEY",
}


def provider_of(model: str) -> str:
    """`anthropic/claude-…` → anthropic; a bare name such as `gpt-4o-mini` is OpenAI's, as in LiteLLM."""
    return model.split("/", 1)[0] if "/" in model else "openai"


def uses_light_path(model: str, api_base: str | None) -> bool:
    return bool(api_base) and "/" in model and provider_of(model) in LIGHT_PROVIDERS


def key_env_name(model: str, api_key_env: str | None) -> str:
    """The variable a user should set: the candidate's `api_key_env`, else the provider's usual one."""
    if api_key_env:
        return api_key_env
    provider = provider_of(model)
    return _DEFAULT_KEY_ENV.get(provider, f"{provider.upper()}_API_KEY")


def read_key(model: str, api_key_env: str | None) -> str | None:
    """The key, read at call time; never stored, logged or put into an error."""
    return os.environ.get(key_env_name(model, api_key_env)) or None


_TOKENISH = re.compile(r"(Bearer\s+)[A-Za-z0-9._\-]{6,}|\b(sk|pk|rk)-[A-Za-z0-9_\-]{8,}")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every given secret and anything shaped like a bearer token or an `sk-…` key masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _TOKENISH.sub(lambda m: (m.group(1) or f"{m.group(2)}-") + "[redacted]", text)
