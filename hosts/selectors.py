"""Reads about outbound hosts, for the dashboard, /health/ and support's list of every
host."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from apicalls.models import ApiCall
from expressions import ExpressionError, render
from expressions.secrets import load_secrets
from hosts.models import Host
from hosts.names import host_of, host_problem
from hosts.seen import hosts_seen_since


def hosts_holding_orders() -> list[Host]:
    """The hosts that hold every order calling them, whatever their limits: paused, or
    their circuit breaker not closed; by name. One query over the hosts table (a row per
    partner host, few)."""
    return list(
        Host.objects.filter(Q(paused_at__isnull=False) | ~Q(breaker_state=Host.Breaker.CLOSED))
    )


@dataclass
class KnownHost:
    """A host support may pause: one the API calls' URLs name, one called in the last
    day, or one with settings; `row` is its settings (None: none yet)."""

    host: str
    api_calls: list[str] = field(default_factory=list)
    last_seen_at: datetime | None = None
    row: Host | None = None

    @property
    def paused(self) -> bool:
        return self.row is not None and self.row.paused


# How far back "seen lately" looks.
SEEN_WITHIN = timedelta(days=1)


def every_host(now: datetime | None = None) -> tuple[list[KnownHost], list[str]]:
    """Every host the API calls' URLs name (their templates rendered with the secrets as
    they are set), every host called within SEEN_WITHIN and every host with settings, by
    name; and the API calls whose URL's host depends on each order (it cannot be named
    before an order renders it)."""
    now = now or timezone.now()
    hosts: dict[str, KnownHost] = {}

    def known(name: str) -> KnownHost:
        return hosts.setdefault(name, KnownHost(host=name))

    per_order = []
    for slug, name in api_call_hosts().items():
        if name:
            known(name).api_calls.append(slug)
        else:
            per_order.append(slug)
    for name, seen in hosts_seen_since(now - SEEN_WITHIN).items():
        known(name).last_seen_at = seen
    for row in Host.objects.all():
        known(row.host).row = row
    return [hosts[name] for name in sorted(hosts)], per_order


def api_call_hosts() -> dict[str, str]:
    """Each API call's slug with the host its URL names ("" when the URL needs an order's
    input, data or params to say its host)."""
    context = {"secrets": load_secrets(), "input": {}, "data": {}, "params": {}, "order": {}}
    rows = ApiCall.objects.order_by("slug").values_list("slug", "definition")
    return {slug: url_host(definition.get("url"), context) for slug, definition in rows}


def url_host(url, context: dict) -> str:
    """The host a URL template names before any order: rendered whole, or up to the first
    expression that needs an order, when the host is already written out by then.

    >>> url_host("{{ secrets.API }}/v1/{{ input.region }}", {"secrets": {"API": "https://a.example"}})
    'a.example'
    >>> url_host("https://{{ input.region }}.example/v1", {"secrets": {}})
    ''
    """
    if not isinstance(url, str):
        return ""
    cuts = [
        len(url),
        *sorted((i for i in range(len(url)) if url.startswith("{{", i)), reverse=True),
    ]
    for cut in cuts:
        try:
            rendered = render(url[:cut], context)
        except ExpressionError:
            continue
        if not isinstance(rendered, str) or "://" not in rendered:
            return ""
        if cut < len(url) and "/" not in rendered.split("://", 1)[1]:
            return ""  # the host itself is still to be rendered
        name = host_of(rendered)
        return "" if host_problem(name) else name
    return ""
