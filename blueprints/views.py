from django.http import Http404, HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from definitions.validation import API_CALL_SCHEMA, BLUEPRINT_SCHEMA, SCHEMA_DIR

SCHEMA_FILES = (API_CALL_SCHEMA, BLUEPRINT_SCHEMA)


@require_safe
@cache_control(public=True, max_age=3600)
def schema_file(request, name: str) -> HttpResponse:
    """A definition JSON Schema, public so editors and CI can fetch it by URL."""
    if name not in SCHEMA_FILES:
        raise Http404(name)
    content = (SCHEMA_DIR / name).read_bytes()
    return HttpResponse(content, content_type="application/schema+json")
