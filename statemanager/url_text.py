"""Refuse a URL holding text PostgreSQL cannot store before any view looks it up: a NUL
(`%00`) in an order id, a callback token or a filter would be a database error there.

Django decodes a URL's broken UTF-8 into replacement characters, so of the unstorable
text only NUL gets this far. The same on SQLite, which could store it.
"""

from django.http import HttpResponseBadRequest, HttpResponseNotFound, JsonResponse

from core.storable import shown, text_problem


class UnstorableURLText:
    """404 for such a path (no order, token or slug can hold it); 400 naming the parameter
    for such a query string."""

    api_prefix = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path.startswith(self.api_prefix)
        if text_problem(request.path):
            if api:
                return JsonResponse({"detail": "Not found."}, status=404)
            return HttpResponseNotFound("Not found.", content_type="text/plain")
        errors = query_errors(request.GET)
        if errors:
            if api:
                return JsonResponse({"errors": errors}, status=400)
            return HttpResponseBadRequest("\n".join(errors), content_type="text/plain")
        return self.get_response(request)


def query_errors(query) -> list[str]:
    """`"<parameter>: <reason>"` for each parameter of a query string that holds such text."""
    errors = []
    for name, values in query.lists():
        problem = text_problem(name)
        if problem:
            errors.append(f"query: the parameter {shown(name)} {problem}")
            continue
        problems = {text_problem(value) for value in values} - {None}
        errors += [f"{name}: {problem}" for problem in sorted(problems)]
    return errors
