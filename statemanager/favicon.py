"""The site's icon, served by the app itself at /favicon.ico: browsers ask for it on
every page, and it must not 404 whether or not a web server serves the static files."""

from django.http import HttpResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

# A blueprint in miniature: a step branching to two others.
ICON = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect width="32" height="32" rx="6" fill="#417690"/>
<path d="M9 9H23M9 9V23H23" fill="none" stroke="#fff" stroke-width="2.5"/>
<circle cx="9" cy="9" r="4.5" fill="#fff"/>
<circle cx="23" cy="9" r="3.5" fill="#fff"/>
<circle cx="23" cy="23" r="3.5" fill="#fff"/>
</svg>
"""


@require_safe
@cache_control(public=True, max_age=86400)
def favicon(request):
    return HttpResponse(ICON, content_type="image/svg+xml")
