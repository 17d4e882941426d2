"""The API's JSON parser: DRF's, with a body nested too deeply for Python a 400, not a 500."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """Python's json module recurses once per level and gives up near 1000 levels, long
    before the 1 MiB body limit; every door refuses far shallower JSON anyway
    (STATE_MANAGER_MAX_JSON_DEPTH), so such a body is malformed for us."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc
