import json

from django.core.management.base import BaseCommand

from blueprints.services import definitions_export


class Command(BaseCommand):
    help = (
        "Write every connection, API call and blueprint as one JSON document, each ordered "
        "by name, for version control and for import_definitions on another system."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args, output: str | None, **options):
        text = json.dumps(definitions_export(), indent=2, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as stream:
                stream.write(text)
        else:
            self.stdout.write(text, ending="")
