"""Secrets come from `STATE_MANAGER_SECRET_<NAME>` environment variables and never reach storage.

Templates see them as `secrets.<NAME>`; everything the engine stores (log rows, errors,
saved data) goes through `mask` first, which replaces each secret's value with `***`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "STATE_MANAGER_SECRET_"
MASK = "***"
# Headers whose values are credentials whatever they were rendered from (a base64 of a
# secret, a signature made with one), so they are masked by name as well as by value.
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)


def load_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secrets by name, read from the environment.

    >>> load_secrets({"STATE_MANAGER_SECRET_PAY_TOKEN": "t0k", "HOME": "/root"})
    {'PAY_TOKEN': 't0k'}
    """
    environ = os.environ if environ is None else environ
    return {key[len(PREFIX) :]: value for key, value in environ.items() if key.startswith(PREFIX)}


def mask(value: Any, secret_values: Iterable[str]) -> Any:
    """`value` with every secret replaced by `***`, in any string inside a JSON value.

    >>> mask({"url": "https://x/?key=t0k", "n": 1, "list": ["t0k"]}, ["t0k"])
    {'url': 'https://x/?key=***', 'n': 1, 'list': ['***']}
    """
    secrets = sorted((s for s in secret_values if s), key=len, reverse=True)
    if not secrets:
        return value
    return _mask(value, secrets)


def _mask(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, Mapping):
        return {_mask(key, secrets): _mask(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(item, secrets) for item in value]
    return value


def mask_headers(headers: Mapping[str, str], secret_values: Iterable[str]) -> dict[str, str]:
    """Headers for the log: credentials masked by name, other values by secret value."""
    return {
        name: MASK if name.lower() in SENSITIVE_HEADERS else mask(value, secret_values)
        for name, value in headers.items()
    }
