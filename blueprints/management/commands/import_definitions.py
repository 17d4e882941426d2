import json
import sys

from django.core.management.base import BaseCommand, CommandError

from blueprints.services import definitions_import
from definitions.validation import DefinitionError


class Command(BaseCommand):
    help = (
        "Create or update connections, API calls and blueprints from a JSON file written by "
        "export_definitions (connections first: API calls name them); nothing is stored "
        "unless every definition is valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help='the JSON document, or "-" to read standard input')

    def handle(self, *args, file: str, **options):
        document = self._read(file)
        try:
            report = definitions_import(document=document)
        except DefinitionError as exc:
            for error in exc.errors:
                self.stderr.write(error)
            raise CommandError(
                f"{len(exc.errors)} error(s) in {file}; nothing was imported."
            ) from exc
        for item in report.definitions:
            self.stdout.write(f"{item.outcome}: {item.kind} {item.slug}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{report.count('created')} created, {report.count('updated')} updated, "
                f"{report.count('unchanged')} unchanged."
            )
        )

    def _read(self, file: str):
        try:
            if file == "-":
                return json.load(sys.stdin)
            with open(file, encoding="utf-8") as stream:
                return json.load(stream)
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file}: not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise CommandError(f"{file}: not valid JSON: nested too deeply") from exc
