"""Names people and files give to things shown in the app (annotators, candidates): checked where they are
created, so that a name is a short, plain word and never markup, a link or an invisible control."""
from __future__ import annotations

import re
import unicodedata

from storage.errors import InputError

MAX_NAME = 200  # the database column; room for e-mail identities
# letters and digits of any script, then also space . _ - @ + ' (e-mail addresses, "Ana Lía", "o'brien")
_ANNOTATOR = re.compile(r"[^\W_](?:[\w .@+'-]*[\w.])?")
# candidate names may also hold / : = (provider-style "openai/gpt-4o", "qwen2.5:7b")
_CANDIDATE = re.compile(r"[^\W_](?:[\w .@+/:=()-]*[\w.)])?")

_RULES = {
    "annotator": (_ANNOTATOR, "letters, digits, spaces and . _ - @ + '"),
    "candidate": (_CANDIDATE, "letters, digits, spaces and . _ - @ + / : = ( )"),
}


def check_name(value: object, kind: str, *, where: str | None = None) -> str:
    """The name, stripped, or an InputError saying what is wrong with it (kind: "annotator" or "candidate")."""
    pattern, allowed = _RULES[kind]
    name = unicodedata.normalize("NFC", str(value if value is not None else "")).strip()
    where = where or kind
    if not name:
        raise InputError(f"{kind} name is empty", where=where, hint=f"give a name of {allowed}")
    if len(name) > MAX_NAME:
        raise InputError(f"{kind} name {name[:40]!r}… is {len(name)} characters long; the limit is {MAX_NAME}", where=where,
                         hint="use a shorter name")
    bad = [ch for ch in name if not (ch.isalnum() or ch in " ._-@+'" or (kind == "candidate" and ch in "/:=()"))]
    if bad or not pattern.fullmatch(name):
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in dict.fromkeys(bad)) if bad else None
        what = f"{kind} name {name!r} " + (f"holds {shown}" if shown else "must start with a letter or digit "
                                                                           "and end with one")
        raise InputError(what, where=where, hint=f"a name may hold only {allowed}")
    return name
