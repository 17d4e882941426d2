"""Secrets come from `STATE_MANAGER_SECRET_<NAME>` environment variables and never reach storage.

Templates see them as `secrets.<NAME>`; everything the engine stores (log rows, errors,
saved data, callback data) goes through `mask` first, which replaces each secret with
`***` in every form the engine, `requests` or an API echoing it may turn it into on the
way, or a partner's encoder may write it in: as it is, percent-encoded (either hex
case, `+` for a space), XML- and HTML-escaped (`&amp;`, `&#39;`, `&#xe9;`), in base64
(standard or URL-safe, padded or not), JSON-escaped (`\\uXXXX` in either hex case for any character,
or the short escapes), its UTF-8 bytes read as ISO-8859-1 (a response header, as
http.client decodes it), Python's escapes of text and bytes (`\\xeb`, `\\xc3\\xab`: a log
line's), any mix of these from one character to the next, and in any
letter case (a host name comes back lowercased).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

from expressions.values import map_strings

PREFIX = "STATE_MANAGER_SECRET_"
MASK = "***"
# Headers whose values are credentials whatever they were rendered from (a base64 of a
# secret, a signature made with one), so they are masked by name as well as by value.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
XML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}
# Values masked besides the environment's secrets while a block runs (`also_masked`).
_also_masked: ContextVar[tuple[str, ...]] = ContextVar("also_masked", default=())


def load_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secrets by name, read from the environment.

    >>> load_secrets({"STATE_MANAGER_SECRET_PAY_TOKEN": "t0k", "HOME": "/root"})
    {'PAY_TOKEN': 't0k'}
    """
    environ = os.environ if environ is None else environ
    return {key[len(PREFIX) :]: value for key, value in environ.items() if key.startswith(PREFIX)}


@contextmanager
def also_masked(values: Iterable[str]) -> Iterator[None]:
    """Within the block, `secrets_in_scope` holds `values` too: a webhook URL's token, say,
    which no environment variable names but every log line written meanwhile must hide."""
    token = _also_masked.set(_also_masked.get() + tuple(value for value in values if value))
    try:
        yield
    finally:
        _also_masked.reset(token)


def secrets_in_scope() -> list[str]:
    """What the log masks: the environment's secrets and the values `also_masked` adds.

    >>> with also_masked(["t0k"]):
    ...     "t0k" in secrets_in_scope()
    True
    """
    return [*load_secrets().values(), *_also_masked.get()]


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may hold a token, as written and percent-decoded: its path
    and query (chat webhooks put their token in the path), and its password. The host
    stays, to say where a send failed.

    >>> url_secrets("https://u:p%40ss@x.example/hooks/t%c3%b6k?token=s%2bcret")
    ['hooks/t%c3%b6k?token=s%2bcret', 'hooks/tök?token=s+cret', 'p%40ss', 'p@ss']
    """
    parts = urlsplit(url)
    hidden = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    values: list[str] = []
    for value in (hidden, parts.password or ""):
        values += [form for form in dict.fromkeys((value, unquote(value))) if form]
    return values


def mask(value: Any, secret_values: Iterable[str]) -> Any:
    """`value` with every secret replaced by `***`, in any string or key inside a JSON value.

    >>> mask({"url": "https://x/?key=t0k", "n": 1, "list": ["T0K"]}, ["t0k"])
    {'url': 'https://x/?key=***', 'n': 1, 'list': ['***']}
    >>> mask("q=a%2Bb%2fc+d&p=a+b/c%20d", ["a+b/c d"])
    'q=***&p=***'
    >>> mask(r'a: s\\u002bcr\\u0022\\u00EBt, b: s%2bcr%22%C3%ABt, c: s+cr"Ã«t', ['s+cr"ët'])
    'a: ***, b: ***, c: ***'
    >>> mask("<p>a&amp;b&#60;c&#x3C;d&#39;&#233;</p>", ["a&b<c<d'é"])
    '<p>***</p>'
    >>> mask("Authorization: Basic dXNlcjpwYXNz", ["user:pass"])
    'Authorization: Basic ***'
    """
    pattern = secrets_pattern(tuple(sorted({s for s in secret_values if s})))
    if pattern is None:
        return value
    return _mask(value, pattern)


@functools.lru_cache(maxsize=64)
def secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern | None:
    """One pattern for all the secrets, longest first, so a secret inside another is
    never masked in part."""
    if not secrets:
        return None
    forms = [_secret_form(secret) for secret in sorted(secrets, key=len, reverse=True)]
    # Base64 is case-sensitive: its forms match as written, ahead of the others.
    encoded = sorted({form for secret in secrets for form in _base64_forms(secret)}, key=len)
    cased = "".join(f"(?-i:{re.escape(form)})|" for form in reversed(encoded))
    return re.compile(cased + "|".join(forms), re.IGNORECASE)


def _base64_forms(secret: str) -> list[str]:
    """The secret in base64, standard and URL-safe, padded or not (a Basic header made by
    hand, a file part): at least 6 characters of it, so a short one masks no other text."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = []
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms += [encoded, encoded.rstrip("=")]
    return [form for form in forms if len(form.rstrip("=")) >= 6]


def _secret_form(secret: str) -> str:
    """A regular expression matching `secret` with each character in any of its forms."""
    return "".join(_character_forms(character) for character in secret)


@functools.cache
def _character_forms(character: str) -> str:
    encoded = character.encode("utf-8", "surrogatepass")
    forms = [re.escape(character)]
    forms.append("".join(f"%{byte:02x}" for byte in encoded))
    if character == " ":
        forms.append(r"\+")
    # JSON's escapes: `\uXXXX` for any character (a pair of them beyond the BMP), as any
    # encoder may write it, and the short ones (`\"`, `\\`, `\/`, `\n`, ...).
    units = character.encode("utf-16-be", "surrogatepass")
    forms.append("".join(rf"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)))
    escaped = json.dumps(character)[1:-1]
    if escaped != character and not escaped.startswith("\\u"):
        forms.append(re.escape(escaped))
    if character == "/":
        forms.append(re.escape("\\/"))
    if character in XML_ENTITIES or not character.isascii():
        # XML's and HTML's escapes, as a template's `| e` or a partner's XML writes them.
        forms += [f"&#0*{ord(character)};", f"&#x0*{ord(character):x};"]
        if character in XML_ENTITIES:
            forms.append(re.escape(XML_ENTITIES[character]))
    if len(encoded) > 1:
        # UTF-8 read as ISO-8859-1: how http.client decodes a header's bytes.
        forms.append(re.escape(encoded.decode("latin-1")))
        # Python's escapes, as a log line shows text (Django's, by `unicode_escape`) or
        # bytes (their repr): `\xeb`, `\U0001f600`; `\xc3\xab`.
        code = ord(character)
        forms.append(rf"\\x{code:02x}" if code < 0x100 else rf"\\U{code:08x}")
        forms.append("".join(rf"\\x{byte:02x}" for byte in encoded))
    return forms[0] if len(forms) == 1 else "(?:" + "|".join(forms) + ")"


def _mask(value: Any, pattern: re.Pattern) -> Any:
    return map_strings(value, lambda text: pattern.sub(MASK, text))


def mask_headers(headers: Mapping[str, str], secret_values: Iterable[str]) -> dict[str, str]:
    """Headers for the log: credentials masked by name, other values by secret value."""
    secret_values = list(secret_values)
    return {
        mask(name, secret_values): MASK
        if name.lower() in SENSITIVE_HEADERS
        else mask(value, secret_values)
        for name, value in headers.items()
    }
