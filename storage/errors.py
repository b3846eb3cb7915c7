"""The one error type users see: what went wrong, where (file:line, field, rubric key) and what to do."""
from __future__ import annotations


class InputError(Exception):
    """Bad input from a user: a file, a flag, a rubric, a reference to something that does not exist."""

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what, self.where, self.hint = what, where, hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class IntegrityError(InputError):
    """Stored content no longer matches its hash: the version was tampered with or corrupted."""
