"""`GET /metrics`: the fleet's metrics in Prometheus' text format (`orders.metrics`).

A plain Django view, not an API endpoint: Prometheus sends its bearer token and wants
text, and the OpenAPI schema stays the API's. While STATE_MANAGER_METRICS_TOKEN is unset
the page does not exist (404); without the token it is a 401, with another one a 403.
"""

from __future__ import annotations

import hmac

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from core.conf import conf
from orders.metrics import registry


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = conf().metrics_token
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("a bearer token is needed\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("wrong token\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
