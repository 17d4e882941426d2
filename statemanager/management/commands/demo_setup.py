"""Load the demo definitions and the demo logins, idempotently (run by ./run every start):
definitions someone changed since the demo imported them are kept as they are."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token

from blueprints.services import definitions_import
from core.conf import conf
from definitions.validation import DefinitionError

DEFINITIONS = Path(settings.BASE_DIR) / "demo" / "definitions.json"
INTEGRATIONS_GROUP = "Integrations"
IMPORTER = "demo-setup"


class Command(BaseCommand):
    help = (
        "Import demo/definitions.json, create a demo admin and an integration user with an "
        "API token, and print how to log in. Safe to run again: it updates in place the "
        "definitions it imported, and keeps (and names) those someone changed since."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", default=str(DEFINITIONS), help="definitions to import")
        parser.add_argument("--username", default="admin", help="demo superuser's login")
        parser.add_argument(
            "--password", default="statemanager-demo", help="demo superuser's password"
        )
        parser.add_argument(
            "--integration-user", default="demo-integration", help="owner of the webhook token"
        )

    def handle(self, *args, **options):
        document = self.read_definitions(Path(options["file"]))
        with transaction.atomic():
            admin = self.demo_admin(options["username"], options["password"])
            try:
                report = definitions_import(
                    document=document, user=self.importer(), keep_changes=True
                )
            except DefinitionError as exc:
                raise CommandError(f"{options['file']} is invalid:\n{exc}") from exc
            token = self.integration_token(options["integration_user"])
        public_url = conf().public_url
        calls, blueprints = len(document["api_calls"]), len(document["blueprints"])
        self.stdout.write(f"Demo definitions: {calls} API calls, {blueprints} blueprint(s).")
        for item in report.definitions:
            if item.outcome == "kept":
                self.stdout.write(
                    f"Kept {item.kind} {item.slug} as it is: changed since the demo's import "
                    f"({item.note}). To take the demo's again, restore a version by "
                    f"{IMPORTER} on its Versions page."
                )
        self.stdout.write(f"Admin:    {public_url}/admin/")
        self.stdout.write(f"Login:    {admin.get_username()}")
        self.stdout.write(f"Password: {options['password']}")
        self.stdout.write(f"Webhook token ({options['integration_user']}): {token.key}")

    def read_definitions(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc

    def importer(self):
        """Who saves the demo's definitions: a user nobody logs in as, so a version by
        anyone else is someone's change, which the next start keeps."""
        user, created = get_user_model().objects.get_or_create(
            username=IMPORTER, defaults={"is_active": False}
        )
        if created:
            user.set_unusable_password()
            user.save()
        return user

    def demo_admin(self, username: str, password: str):
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return user

    def integration_token(self, username: str) -> Token:
        """A non-staff user who may only post orders, as the Integrations role says."""
        user, _ = get_user_model().objects.get_or_create(username=username)
        group = Group.objects.filter(name=INTEGRATIONS_GROUP).first()
        if group is not None:
            user.groups.add(group)
        else:
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="orders", codename="add_order")
            )
        token, _ = Token.objects.get_or_create(user=user)
        return token
