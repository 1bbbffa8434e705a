"""Recognise credential-like literals, and mask them for evidence.

Two signals: the value itself (connection-string keys, SAS signatures, private keys, JWTs,
well-known token prefixes, passwords in URLs, long high-entropy strings) and the name it is
stored under (`DB_PASSWORD`, `API_KEY`...) combined with a value that is not trivially harmless.
The near misses matter as much as the hits: an audit tool that cries wolf is switched off.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter
from urllib.parse import urlsplit

_VALUE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("storage or service bus key", re.compile(
        r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature)\s*=\s*[^;\s]{8,}")),
    ("SAS signature", re.compile(r"(?i)[?&]sig=[A-Za-z0-9%+/=]{16,}")),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    ("JSON web token", re.compile(
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})")),
    ("GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("AWS access key", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("Google API key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b")),
    ("OpenAI or Stripe key", re.compile(r"\b(?:sk|rk)[-_](?:live_|test_|proj-)?[A-Za-z0-9]{20,}")),
    ("npm token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b")),
    ("SendGrid key", re.compile(r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}")),
)

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)
_CREDENTIAL_WORDS = {"password", "passwd", "pwd", "pass", "secret", "token", "apikey",
                     "credential", "credentials", "connectionstring", "connstr", "privatekey",
                     "accesskey", "secretkey", "clientsecret", "sas", "auth"}
# A name ending in one of these describes a credential without holding one.
_DESCRIPTIVE_ENDINGS = {"name", "names", "length", "len", "min", "max", "url", "uri",
                        "endpoint", "file", "path", "dir", "id", "ttl", "expiry", "expiration",
                        "timeout", "header", "enabled", "version", "type", "policy", "count",
                        "size", "mode", "issuer", "audience", "scope", "ref", "reference",
                        "vault", "location", "format", "prefix", "interval", "days", "seconds"}
_PLACEHOLDER = re.compile(r"^(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^>]*>|\{\{.*\}\}|x+|\*+|changeme"
                          r"|redacted|none|null|true|false|yes|no|on|off)$", re.IGNORECASE)
# How to sign in, not a secret: `--auth managed-identity` (auditor's own), `--auth-type basic`.
_AUTH_METHODS = {"managed-identity", "workload-identity", "service-principal", "system-assigned",
                 "user-assigned", "anonymous", "default", "environment", "interactive",
                 "device-code", "oauth", "oauth2", "bearer", "basic", "login", "cli", "msi"}
_NAMED_ASSIGNMENT = re.compile(
    r"(?:^|[\s;&|\"'])-{0,2}([A-Za-z][A-Za-z0-9_.-]*)[=:]\s*([^\s;&|\"']+)")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@functools.lru_cache(maxsize=65_536)  # the same settings recur across the jobs of an estate
def credential_reason(value: str, name: str | None = None) -> str | None:
    """Why `value` (stored under `name`, if any) looks like a credential; None if it does not."""
    text = value.strip()
    if not text:
        return None
    for label, pattern in _VALUE_PATTERNS:
        if pattern.search(text):
            return label
    if _url_with_password(text):
        return "password in a URL"
    if name and is_credential_name(name) and _non_trivial(text):
        return "credential-like name"
    for key, assigned in _NAMED_ASSIGNMENT.findall(text):
        if is_credential_name(key) and _non_trivial(assigned):
            return f"credential-like name '{key}' in the text"
    if _high_entropy(text):
        return "high-entropy string"
    return None


@functools.lru_cache(maxsize=65_536)
def is_credential_name(name: str) -> bool:
    words = [w.lower() for w in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", name) if w]
    if not words or words[-1] in _DESCRIPTIVE_ENDINGS:
        return False
    joined = "".join(words)
    pairs = {a + b for a, b in itertools.pairwise(words)}
    return bool((set(words) | pairs) & _CREDENTIAL_WORDS) or joined in _CREDENTIAL_WORDS or (
        words[-1] == "key" and len(words) > 1)


def _url_with_password(text: str) -> bool:
    for match in _URL.finditer(text):
        try:
            parts = urlsplit(match.group(0))
        except ValueError:
            continue
        if parts.password and not _PLACEHOLDER.match(parts.password):
            return True
    return False


def _non_trivial(value: str) -> bool:
    """Not empty, a number, a boolean, a placeholder, an authentication method's name, a plain
    URL or a Key Vault reference."""
    if len(value) < 6 or _PLACEHOLDER.match(value) or value.lower() in _AUTH_METHODS:
        return False
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", value):
        return False
    if _URL.fullmatch(value) and not _url_with_password(value):
        return False
    return not value.lower().startswith(("keyvaultref:", "secretref:"))


def _high_entropy(text: str) -> bool:
    """A long token drawn from a large alphabet: a key or token even without a telling name."""
    if len(text) < 24 or any(c.isspace() for c in text):
        return False
    if _UUID.match(text) or _URL.match(text) or text.startswith(("/", ".")):
        return False
    classes = sum((any(c.islower() for c in text), any(c.isupper() for c in text),
                   any(c.isdigit() for c in text)))
    if classes < 3:
        return False
    counts = Counter(text)
    entropy = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    return entropy >= 4.2


def mask(value: str) -> str:
    """Show at most 4 leading characters (fewer for short values) and the length."""
    shown = value[: min(4, len(value) // 4)]
    return f"{shown}**** ({len(value)} chars)"
