"""The API's token authentication: DRF's, reading the token's user with an SQL text made
once instead of a query the ORM compiles on every request (once the rest of a webhook
post was made cheap, that compiling took a third of its CPU).

A module of its own: DRF imports its authentication classes while importing its views,
which the API modules import.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from core.storable import text_problem


class TokenAuthentication(authentication.TokenAuthentication):
    """`Authorization: Token <key>`, with DRF's answers: 401 for an unknown key or an
    inactive user; `request.auth` is the token."""

    def authenticate_credentials(self, key):
        # No token holds text PostgreSQL cannot store, and the query would fail on it.
        if text_problem(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = next(iter(get_user_model().objects.raw(_token_user_sql(), [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = self.get_model()(key=key, user=user, created=user.token_created)
        return user, token


@cache
def _token_user_sql() -> str:
    """The user of the token with key %s (every column of the user model, converted as
    the ORM does), and the token's `created` as `token_created` (as the database gives it)."""
    User = get_user_model()
    Token = authentication.TokenAuthentication().get_model()
    quote = connection.ops.quote_name
    token = Token._meta

    def column(name: str) -> str:
        return quote(token.get_field(name).column)

    user_columns = ", ".join(f"u.{quote(field.column)}" for field in User._meta.concrete_fields)
    return (
        f"SELECT {user_columns}, t.{column('created')} AS token_created "
        f"FROM {quote(token.db_table)} t JOIN {quote(User._meta.db_table)} u "
        f"ON u.{quote(User._meta.pk.column)} = t.{column('user')} WHERE t.{column('key')} = %s"
    )
