"""Host names as the gate compares them: what a URL's host is, and what may be stored.

>>> host_of("https://API.Partner.example:8443/v1/orders")
'api.partner.example'
>>> host_of("http://[::1]:8080/")
'::1'
>>> host_problem("api.partner.example") is None
True
>>> host_problem("https://api.partner.example/")
'give the host name only, without scheme, port or path: "https://api.partner.example/"'
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def host_of(url: str) -> str:
    """The host of a URL, lower case, without port or trailing dot."""
    return (urlsplit(url).hostname or "").rstrip(".")


def canonical_host(value: str) -> str:
    """A host name as it is stored and compared: trimmed, lower case, no trailing dot.

    >>> canonical_host(" API.Partner.example. ")
    'api.partner.example'
    """
    return (value or "").strip().lower().rstrip(".")


def host_problem(value: str) -> str | None:
    """Why `value` cannot name a host, or None."""
    name = canonical_host(value)
    if not name:
        return "give a host name, such as api.partner.example"
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    if len(name) > 253 or not all(LABEL.match(label) for label in name.split(".")):
        return f'give the host name only, without scheme, port or path: "{value}"'
    return None
