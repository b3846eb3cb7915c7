"""Opt-in redaction: personal data and secrets in log records become typed placeholders before anything is
stored. Kinds, in the order they are applied (secrets first, so a key's digits are never read as a phone):

    api_key  [API_KEY]   provider key formats (sk-…, AKIA…, ghp_…, xox…-, AIza…, hf_…), bearer tokens, JWTs,
                         and the value of `api_key=`, `secret:`, `token=`, `password=` assignments
    email    [EMAIL]
    card     [CARD]      13–19 digits (spaces/dashes allowed) that pass the Luhn check
    ip       [IP]        IPv4 (each octet 0–255) and IPv6 (checked by the ipaddress module)
    phone    [PHONE]     9–15 digits written as a phone number (a leading + or separators), not a date

The counts per kind are reported with the version; the original text is never stored.
"""
from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any

from evalsets.readers.base import LogRecord

_API_KEY = re.compile(
    r"\b(?:sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|hf_[A-Za-z0-9]{30,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
    r"|(?i:\bbearer\s+)[A-Za-z0-9._~+/-]{20,}=*"
)
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|token|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?)([A-Za-z0-9_\-./+=]{12,})"
)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){1,4}(?![\w])")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")

KINDS = ("api_key", "email", "card", "ip", "phone")
PLACEHOLDER = {"api_key": "[API_KEY]", "email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def redact_text(text: str, counts: Counter) -> str:
    if not text:
        return text

    def sub(kind: str, pattern: re.Pattern, s: str, check=None) -> str:  # type: ignore[no-untyped-def]
        def repl(m: re.Match) -> str:
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDER[kind]
        return pattern.sub(repl, s)

    def secret_repl(m: re.Match) -> str:
        if m.group(2).startswith("["):
            return m.group(0)
        counts["api_key"] += 1
        return m.group(1) + PLACEHOLDER["api_key"]

    text = sub("api_key", _API_KEY, text)
    text = _ASSIGNED_SECRET.sub(secret_repl, text)
    if "@" in text:
        text = sub("email", _EMAIL, text)
    text = sub("card", _CARD, text, _is_card)
    if "." in text:
        text = sub("ip", _IPV4, text)
    if "::" in text or text.count(":") >= 7:
        text = sub("ip", _IPV6, text, _is_ipv6)
    return sub("phone", _PHONE, text, _is_phone)


def _is_card(s: str) -> bool:
    digits = re.sub(r"\D", "", s)
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


def _is_ipv6(s: str) -> bool:
    if sum(1 for g in s.split(":") if g) < 2:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _is_phone(s: str) -> bool:
    digits = sum(ch.isdigit() for ch in s)
    if not 9 <= digits <= 15 or _DATE.match(s):
        return False
    return s.startswith("+") or "(" in s or bool(re.search(r"\d[\s.-]\d", s))


def redact_value(value: Any, counts: Counter) -> Any:
    if isinstance(value, str):
        return redact_text(value, counts)
    if isinstance(value, list):
        return [redact_value(v, counts) for v in value]
    if isinstance(value, dict):
        return {k: redact_value(v, counts) for k, v in value.items()}
    return value


def redact_record(record: LogRecord, counts: Counter) -> LogRecord:
    """The same record with every text (message contents, content parts, reference, metadata) redacted."""
    record.messages = redact_value(record.messages, counts)
    if record.reference:
        record.reference = redact_text(record.reference, counts)
    if record.meta:
        record.meta = redact_value(record.meta, counts)
    return record
