"""Who uses a definition, asked of the packages above it: a package below (API calls,
connections) cannot import the ones that use it (blueprints, API calls), so each of
those registers a finder when it starts, in its AppConfig's `ready`."""

from __future__ import annotations

from collections.abc import Callable

from django.db import models

UsageFinder = Callable[[str], list[models.Model]]


class UsageFinders:
    """The finders registered for one kind of definition; each maps its key (a slug, a
    name) to the definitions that use it."""

    def __init__(self) -> None:
        self.finders: list[UsageFinder] = []

    def register(self, finder: UsageFinder) -> None:
        if finder not in self.finders:
            self.finders.append(finder)

    def users(self, key: str) -> list[models.Model]:
        return [user for finder in self.finders for user in finder(key)]
