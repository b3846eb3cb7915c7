"""Who is using the app, and what they may open.

Three modes, chosen by configuration (`deployment_mode`):
- **oidc**: `[auth]` in `.streamlit/secrets.toml`; people sign in with Streamlit's own `st.login` against any
  OIDC provider; their identity is the e-mail claim (else `sub`).
- **header**: `OWNBENCH_AUTH_HEADER` names the header an authenticating proxy (oauth2-proxy…) sets; it is
  believed only on requests that also carry the proxy's shared secret (`OWNBENCH_PROXY_SECRET` in the
  `OWNBENCH_PROXY_SECRET_HEADER` header), compared in constant time. Without the secret the app refuses to start.
- **single-user**: nothing configured. One person on 127.0.0.1, who is the owner; every page says so.

A signed-in identity has a role only if an owner gave it one (`ownbench users add`, the People page) or it is
listed in `OWNBENCH_OWNERS`. Identity never comes from the URL.
"""
from __future__ import annotations

import hmac
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

AUTH_HEADER_ENV = "OWNBENCH_AUTH_HEADER"
PROXY_SECRET_ENV = "OWNBENCH_PROXY_SECRET"
PROXY_SECRET_HEADER_ENV = "OWNBENCH_PROXY_SECRET_HEADER"
DEFAULT_SECRET_HEADER = "X-Ownbench-Proxy-Secret"
OWNERS_ENV = "OWNBENCH_OWNERS"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ConfigError(Exception):
    """The deployment's sign-in settings cannot be trusted; the app does not start."""


def default_secrets_files(cwd: Path | None = None) -> list[Path]:
    """Where Streamlit looks for secrets.toml when `secrets.files` is not set."""
    return [Path.home() / ".streamlit" / "secrets.toml", (cwd or Path.cwd()) / ".streamlit" / "secrets.toml"]


def oidc_configured(files: Iterable[Path]) -> bool:
    for f in files:
        if f.is_file():
            with f.open("rb") as fh:
                if isinstance(tomllib.load(fh).get("auth"), dict):
                    return True
    return False


def deployment_mode(env: dict[str, str], oidc: bool) -> str:
    """oidc | header | single-user; raises ConfigError when the settings would let anyone claim an identity."""
    header = (env.get(AUTH_HEADER_ENV) or "").strip()
    if header and oidc:
        raise ConfigError(f"both {AUTH_HEADER_ENV} and an [auth] section in secrets.toml are set: pick one way "
                          "of signing people in")
    if header:
        if not (env.get(PROXY_SECRET_ENV) or "").strip():
            raise ConfigError(
                f"{AUTH_HEADER_ENV}={header} is set but {PROXY_SECRET_ENV} is not: without a shared secret anyone "
                f"who reaches the port could send {header} and label as someone else. Configure the proxy to send "
                f"the secret in the {env.get(PROXY_SECRET_HEADER_ENV) or DEFAULT_SECRET_HEADER} header and set "
                f"{PROXY_SECRET_ENV} to the same value.")
        return "header"
    return "oidc" if oidc else "single-user"


def check_address(mode: str, address: str, insecure: bool) -> None:
    """Single-user mode has no sign-in: it listens on loopback only unless explicitly told otherwise."""
    if mode == "single-user" and address not in LOOPBACK and not insecure:
        raise ConfigError(
            f"no sign-in is configured (single-user mode), so the app listens on 127.0.0.1 only; --address "
            f"{address} would let anyone on the network label as anyone. Configure sign-in ([auth] in "
            ".streamlit/secrets.toml, see README 'Deploying for a team') or pass --insecure.")


def header_trusted(headers: dict[str, str] | object, env: dict[str, str]) -> bool:
    """True when the request carries the proxy's shared secret (constant-time comparison)."""
    expected = (env.get(PROXY_SECRET_ENV) or "").strip().encode()
    name = env.get(PROXY_SECRET_HEADER_ENV) or DEFAULT_SECRET_HEADER
    got = (headers.get(name) or "").strip().encode()  # type: ignore[attr-defined]
    return bool(expected) and hmac.compare_digest(got, expected)


def owners_from_env(env: dict[str, str]) -> tuple[str, ...]:
    return tuple(x.strip() for x in (env.get(OWNERS_ENV) or "").split(",") if x.strip())


def environ() -> dict[str, str]:
    return dict(os.environ)
