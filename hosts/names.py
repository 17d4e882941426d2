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

LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def host_of(url: str) -> str:
    """The host of a URL as hosts are stored (`canonical_host`)."""
    return canonical_host(urlsplit(url).hostname or "")


def canonical_host(value: str) -> str:
    """A host name as it is stored and compared: trimmed, lower case, no trailing dot; an
    address in its short form, without brackets; a Unicode name in its ASCII (IDNA) form.

    >>> canonical_host(" API.Partner.example. ")
    'api.partner.example'
    >>> canonical_host("[2001:DB8:0:0::0001]"), canonical_host("Bücher.example")
    ('2001:db8::1', 'xn--bcher-kva.example')
    """
    name = (value or "").strip().lower().rstrip(".")
    try:
        return ipaddress.ip_address(name.strip("[]")).compressed
    except ValueError:
        pass
    if not name.isascii():
        try:
            return name.encode("idna").decode("ascii")
        except UnicodeError:
            return name
    return name


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
    if len(name) > 253 or not all(LABEL.fullmatch(label) for label in name.split(".")):
        return f'give the host name only, without scheme, port or path: "{value}"'
    return None
