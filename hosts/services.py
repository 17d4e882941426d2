"""The operations on outbound hosts: save their limits, pause and resume them, close a
circuit breaker by hand, delete them. One function per operation, shared by the API and
the admin, so the two can never disagree."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ServiceError, ServiceErrors
from hosts.breaker import close_breaker
from hosts.limits import limits
from hosts.models import Host, HostLease, HostWindow
from hosts.names import canonical_host, host_problem
from hosts.rules import forget_rules
from hosts.signals import host_resumed

logger = logging.getLogger(__name__)

# The largest limits the API and the admin accept: far beyond any partner, and within what
# every database stores.
MAX_RATE_PER_SECOND = 1_000_000.0
MAX_CONCURRENT = 1_000_000


# Who may pause, resume or close a host's breaker.
PAUSE_PERMISSION = "hosts.pause_host"


class HostError(ServiceErrors):
    """A host that cannot be saved; each error is `"<field>: <reason>"`."""


class PauseNotAllowed(ServiceError):
    """The save would pause or resume the host, and its user may not."""

    status_code = 403
    detail = f"Pausing or resuming a host needs the permission {PAUSE_PERMISSION}."


class HostDeleted(ServiceError, Host.DoesNotExist):
    """The host was deleted while it was being saved."""

    status_code = 404


def host_save(
    *,
    host: Host,
    actor: str,
    paused: bool | None = None,
    given: Iterable[str] | None = None,
    may_pause: bool = True,
) -> Host:
    """Save the settings of `host` (a new or a changed row, validated by the caller's form
    or serializer), then pause or resume it when `paused` says so.

    Decided on the host's locked row: the pause is left as the database has it, so a form
    read before someone paused the host cannot resume it by saving; with `given` (the
    fields a PATCH names), the other limits are kept as stored, not as read; and a
    change of the pause by a user who may not (`may_pause`) is refused. When the limits
    changed, the host's rate clocks start afresh.
    """
    with transaction.atomic():
        before = None
        if host.pk:
            before = (
                Host.objects.select_for_update()
                .filter(pk=host.pk)
                .values("rate_per_second", "max_concurrent", "paused_at", "paused_by")
                .first()
            )
            if before is None:
                raise HostDeleted(f'host "{host.host}" was deleted meanwhile')
            host.paused_at, host.paused_by = before["paused_at"], before["paused_by"]
            if given is not None:
                for name in ("rate_per_second", "max_concurrent"):
                    if name not in given:
                        setattr(host, name, before[name])
        was_paused = before is not None and before["paused_at"] is not None
        if paused is not None and paused != was_paused and not may_pause:
            raise PauseNotAllowed
        try:
            with transaction.atomic():
                host.save()
        except IntegrityError as exc:
            raise HostError([f'host: host "{host.host}" exists already']) from exc
    limits_before = before and (before["rate_per_second"], before["max_concurrent"])
    if limits_before and limits_before != (host.rate_per_second, host.max_concurrent):
        reset_limits(host.host)
    if paused is True:
        host_pause(host=host, actor=actor)
    elif paused is False:
        host_resume(host=host, actor=actor)
    return host


def reset_limits(name: str) -> None:
    """Forget the rate clocks of a host whose limits changed: orders its old rate queued
    far ahead are not kept waiting by it. Calls in flight keep their leases."""
    try:
        limits().reset(name)
    except Exception as exc:  # the limits store is down: the old clocks run out by themselves
        logger.warning("limits of host %s not reset: %s", name, exc)


def host_pause(*, host: Host, actor: str) -> Host:
    """Hold every order that would call the host: they stay due, nothing is failed and no
    attempt is counted, until it is resumed. Pausing a paused host keeps when and by whom
    it was first paused."""
    paused = Host.objects.filter(pk=host.pk, paused_at__isnull=True).update(
        paused_at=timezone.now(), paused_by=actor
    )
    forget_rules()
    host.refresh_from_db(fields=["paused_at", "paused_by"])
    if paused:
        logger.info("host %s paused by %s", host.host, actor)
    return host


def host_pause_named(*, name: str, actor: str) -> Host:
    """Pause a host by its name, giving it a row (no limits) when it has none yet: support
    pauses any host in an incident, not only those an editor has set limits on."""
    problem = host_problem(name)
    if problem:
        raise ServiceErrors([f"host: {problem}"])
    host, _ = Host.objects.get_or_create(host=canonical_host(name))
    return host_pause(host=host, actor=actor)


def host_resume(*, host: Host, actor: str) -> Host:
    """Let orders call the host again; the orders its pause held are due at once
    (`host_resumed`). Resuming a host that is not paused changes nothing else."""
    resumed = Host.objects.filter(pk=host.pk, paused_at__isnull=False).update(
        paused_at=None, paused_by=""
    )
    forget_rules()
    host.refresh_from_db(fields=["paused_at", "paused_by"])
    if resumed:
        logger.info("host %s resumed by %s", host.host, actor)
    host_resumed.send(sender=Host, host=host.host)
    return host


def host_close_breaker(*, host: Host, actor: str) -> Host:
    """Close the host's circuit breaker by hand (the partner is known to be back), and
    start its failure count afresh."""
    close_breaker(host.host)
    host.refresh_from_db()
    logger.info("circuit breaker of %s closed by %s", host.host, actor)
    return host


def host_delete(*, host: Host, actor: str) -> None:
    """Delete the host with its limits, leases and failure counts (a breaker it had open
    goes with it); the orders its pause held go at once."""
    with transaction.atomic():
        row = Host.objects.select_for_update().filter(pk=host.pk).first()
        if row is None:
            return
        name, was_paused = row.host, row.paused
        row.delete()
        HostLease.objects.filter(host=name).delete()
        HostWindow.objects.filter(host=name).delete()
    if was_paused:
        host_resumed.send(sender=Host, host=name)
    reset_limits(name)
    logger.info("host %s deleted by %s", name, actor)
