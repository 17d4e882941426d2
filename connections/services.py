"""Writes to connections, shared by the admin, the API and the import command, and the
"Test" of a connection, which the runtime above provides."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, models, transaction

from connections.models import Connection
from connections.validation import ConnectionInvalid, validate_connection
from core.errors import ServiceError
from core.usage import UsageFinders
from definitions.services import canonical_json

logger = logging.getLogger(__name__)

# Who may run a connection's "Test" (it sends a request to the partner).
TEST_PERMISSION = "connections.test_connection"

# Who uses a connection is known to the apps above: API calls register their finder.
_usage = UsageFinders()
register_usage_finder = _usage.register


def connection_users(name: str) -> list[models.Model]:
    """The definitions (API calls) that name the connection `name`."""
    return _usage.users(name)


class ConnectionInUse(ServiceError):
    """The connection cannot be deleted while API calls name it."""

    status_code = 409


def connection_save(*, definition: dict, user=None) -> Connection:
    """Validate a connection's contract JSON and create or update it by name; saving the
    same content again writes nothing."""
    validate_connection(definition)
    name = definition["name"]
    settings = {key: value for key, value in definition.items() if key not in ("name", "kind")}
    with transaction.atomic():
        connection = Connection.objects.select_for_update().filter(name=name).first()
        if connection is None:
            connection = Connection(name=name)
        elif canonical_json(connection.as_definition()) == canonical_json(definition):
            return connection
        connection.kind, connection.settings = definition["kind"], settings
        try:
            with transaction.atomic():
                connection.save()
        except IntegrityError as exc:
            raise ConnectionInvalid([f'name: connection "{name}" exists already']) from exc
    logger.info("connection %s saved by %s", name, _username(user))
    return connection


def connection_delete(*, connection: Connection, user=None) -> None:
    """Delete a connection no API call names; refused (409) naming those that do."""
    with transaction.atomic():
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        users = connection_users(connection.name)
        if users:
            names = ", ".join(f'"{used_by.slug}"' for used_by in users)
            raise ConnectionInUse(
                f'connection "{connection.name}" is used by the API calls {names}; '
                "change them to use another connection first"
            )
        connection.delete()
    logger.info("connection %s deleted by %s", connection.name, _username(user))


def _username(user) -> str:
    return user.get_username() if user is not None and user.is_authenticated else "-"


# -- the "Test" button ---------------------------------------------------------------------


@dataclass(frozen=True)
class TestOutcome:
    """What a test of a connection found: `summary` one sentence, `details` what it saw
    (the token endpoint's status, the signed headers...). Both are masked by the tester:
    they are shown as they are."""

    __test__ = False  # not a pytest test class, whatever its name

    ok: bool
    summary: str
    details: dict = field(default_factory=dict)


Tester = Callable[[Connection], TestOutcome]
_testers: list[Tester] = []


def register_tester(tester: Tester | None) -> Tester | None:
    """Make `tester` the one `test_connection` calls (None: no tester), and return the one
    it replaces. The tester sends requests through the engine's guarded outbound transport,
    which lives above this package, so the runtime registers it when it starts."""
    previous = _testers[0] if _testers else None
    _testers[:] = [tester] if tester is not None else []
    return previous


def test_connection(connection: Connection) -> TestOutcome:
    """Fetch a token with the connection (or sign a sample request) through the registered
    tester, and say how it went. A tester that raises is a failed test; only its error's
    type is logged and shown, as its message may hold what the tester would have masked."""
    if not _testers:
        return TestOutcome(
            ok=False,
            summary="No tester is registered: this process cannot test connections.",
        )
    try:
        return _testers[0](connection)
    except Exception as exc:
        logger.warning("testing connection %s failed: %s", connection.name, type(exc).__name__)
        return TestOutcome(
            ok=False, summary=f"The test could not run ({type(exc).__name__}); see the log."
        )


test_connection.__test__ = False  # not a pytest test, whatever its name
