"""Keep credentials out of logs, even with --debug.

azure-core's HTTP logging already hides the `Authorization` header, but at debug level other
libraries log whole URLs (urllib3 prints every request line, with SAS signatures in a `nextLink`),
exception texts and, with network tracing on, headers and bodies. `RedactingFilter` sits on the
log handlers and rewrites every record's text before it is written: bearer tokens, JWTs,
`Authorization` values, SAS `sig=`, connection-string keys (`AccountKey=`, `SharedAccessKey=`,
`Password=`), passwords in URLs and token fields of JSON (`accessToken`, `access_token`,
`refresh_token`, `client_secret`).
"""

from __future__ import annotations

import logging
import re

MASK = "***REDACTED***"

# (pattern, replacement): each keeps the name so a log still says *what* was there.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xxx / 'Authorization': 'Bearer xxx' / authorization=xxx
    (re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+|sharedkey\s+)?"
                r"[^\s\"',;}]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]{8,}=*"), rf"\1{MASK}"),
    # JSON web tokens anywhere
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # SAS signatures and other secret query parameters
    (re.compile(r"(?i)([?&;](?:sig|signature|se?cret|password|pwd|token|access_token|"
                r"refresh_token|client_secret|code|key|sv-sig)=)[^&\s\"'#]+"), rf"\1{MASK}"),
    # connection strings
    (re.compile(r"(?i)\b((?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|"
                r"ClientSecret|AccessKey)\s*=\s*)[^;\s\"']+"), rf"\1{MASK}"),
    # passwords in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^@\s/\"']+(@)"), rf"\1{MASK}\2"),
    # token fields in JSON or Python reprs
    (re.compile(r"(?i)([\"']?(?:access_?token|refresh_?token|id_?token|client_?secret|"
                r"secret|password)[\"']?\s*[:=]\s*[\"'])[^\"']+([\"'])"), rf"\1{MASK}\2"),
)


def redact(text: str) -> str:
    """`text` with every credential-shaped part replaced by MASK."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) with `redact`; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: keep it as it is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put one RedactingFilter on every handler of `logger` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
