"""Refuse API request bodies over STATE_MANAGER_MAX_REQUEST_BYTES before anything reads them."""

import io

from django.http import JsonResponse

from core.conf import conf


class RequestSizeLimit:
    """413 for an /api/ body over the limit: by Content-Length, or for a chunked body (which
    has none) by reading at most one byte past the limit."""

    prefix = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(self.prefix):
            limit = conf().max_request_bytes
            if self.too_large(request, limit):
                return JsonResponse({"errors": [f"body: larger than {limit} bytes"]}, status=413)
        return self.get_response(request)

    def too_large(self, request, limit: int) -> bool:
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            stream = request.META.get("wsgi.input")
            if stream is None:
                return False
            body = stream.read(limit + 1)
            if len(body) > limit:
                return True
            # Hand the body we read to Django as if it had come with a Content-Length.
            request.META["CONTENT_LENGTH"] = str(len(body))
            request._stream = io.BytesIO(body)
            return False
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0) > limit
        except ValueError:
            return False
