from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from core.api import (
    ActionPermissions,
    BadRequest,
    Detail,
    Errors,
    ModelPermissions,
    Pagination,
)
from core.storable import text_problem
from hosts.models import Host
from hosts.names import canonical_host, host_problem
from hosts.services import (
    PAUSE_PERMISSION,
    host_close_breaker,
    host_delete,
    host_pause,
    host_resume,
    host_save,
)

from .serializers import HostSerializer, HostWriteSerializer

DENIED = {401: Detail, 403: Detail}
INVALID = {400: OpenApiResponse(Errors, description="Every problem, each with its field.")}
OPERATION = {200: HostSerializer, 404: Detail, **DENIED}


@extend_schema_view(
    list=extend_schema(summary="List hosts", responses={200: HostSerializer, **DENIED}),
    retrieve=extend_schema(summary="One host", responses=OPERATION),
    create=extend_schema(
        summary="Create host",
        description='"paused": true needs the permission hosts.pause_host.',
        request=HostWriteSerializer,
        responses={201: HostSerializer, **INVALID, **DENIED},
    ),
    update=extend_schema(
        summary="Replace host",
        description="The limits left out become null; the pause stays as it is unless "
        '"paused" is given. The host name cannot be changed.',
        request=HostWriteSerializer,
        responses={**OPERATION, **INVALID},
    ),
    partial_update=extend_schema(
        summary="Change some keys of host",
        request=HostWriteSerializer(partial=True),
        responses={**OPERATION, **INVALID},
    ),
    destroy=extend_schema(
        summary="Delete host",
        description="Its limits go with it; a paused host's held orders are due at once.",
        responses={204: None, 404: Detail, **DENIED},
    ),
)
class HostViewSet(viewsets.GenericViewSet):
    """Outbound hosts by name: reading needs hosts.view_host, writing the add/change/delete
    ones, pausing, resuming and closing a breaker hosts.pause_host."""

    queryset = Host.objects.all()
    serializer_class = HostSerializer
    lookup_field = "host"
    lookup_value_regex = "[^/]+"  # host names have dots, IPv6 addresses colons
    permission_classes = [ModelPermissions]
    pagination_class = Pagination
    filter_backends = []
    action_permissions = {
        "pause": [PAUSE_PERMISSION],
        "resume": [PAUSE_PERMISSION],
        "close_breaker": [PAUSE_PERMISSION],
    }

    def get_permissions(self):
        if self.action in self.action_permissions:
            return [ActionPermissions()]
        return super().get_permissions()

    def get_object(self) -> Host:
        """The host the URL names, in any case and with or without its trailing dot; a name
        no host could have is not looked up."""
        name = self.kwargs[self.lookup_field]
        host = None
        if not (text_problem(name) or host_problem(name)):
            host = Host.objects.filter(host=canonical_host(name)).first()
        if host is None:
            raise exceptions.NotFound(f'No host "{name}".')
        self.check_object_permissions(self.request, host)
        return host

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(HostSerializer(page, many=True).data)

    def retrieve(self, request, host=None):
        return Response(HostSerializer(self.get_object()).data)

    def create(self, request):
        data = self.valid(request, {})
        if Host.objects.filter(host=data["host"]).exists():
            raise BadRequest([f'host: host "{data["host"]}" exists already'])
        host = Host(host=data["host"])
        saved = self.saved(host, data, request)
        return Response(HostSerializer(saved).data, status=status.HTTP_201_CREATED)

    def update(self, request, host=None):
        return self.changed(request, partial=False)

    def partial_update(self, request, host=None):
        return self.changed(request, partial=True)

    def destroy(self, request, host=None):
        host_delete(host=self.get_object(), actor=request.user.get_username())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def changed(self, request, *, partial: bool) -> Response:
        host = self.get_object()
        data = self.valid(request, {"host": host.host}, partial=partial)
        if data["host"] != host.host:
            raise BadRequest(["host: must match the URL; a host cannot be renamed"])
        given = set(request.data) if partial else None
        return Response(HostSerializer(self.saved(host, data, request, given=given)).data)

    @staticmethod
    def valid(request, defaults: dict, *, partial: bool = False) -> dict:
        """The request's body, checked: an object (its text checked by the parser), each
        field valid."""
        if not isinstance(request.data, dict):
            raise BadRequest(["body: must be a JSON object"])
        fields = request.data.dict() if hasattr(request.data, "dict") else request.data
        body = {**defaults, **fields}
        serializer = HostWriteSerializer(data=body, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def saved(self, host: Host, data: dict, request, *, given=None) -> Host:
        """Saved through `host_save`, which decides on the locked row; a change of the
        pause needs hosts.pause_host."""
        for field in ("rate_per_second", "max_concurrent"):
            if field in data:
                setattr(host, field, data[field])
        return host_save(
            host=host,
            actor=request.user.get_username(),
            paused=data.get("paused"),
            given=given,
            may_pause=request.user.has_perm(PAUSE_PERMISSION),
        )

    @extend_schema(
        summary="Pause host",
        description="Every order that would call the host stays due, its step neither failed "
        "nor counted as an attempt, until the host is resumed; a call already in flight "
        "finishes. Pausing a paused host keeps when and by whom it was first paused.",
        request=None,
        responses=OPERATION,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, host=None):
        paused = host_pause(host=self.get_object(), actor=request.user.get_username())
        return Response(HostSerializer(paused).data)

    @extend_schema(
        summary="Resume host",
        description="Orders call the host again; those its pause held are due at once. "
        "Resuming a host that is not paused changes nothing.",
        request=None,
        responses=OPERATION,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, host=None):
        resumed = host_resume(host=self.get_object(), actor=request.user.get_username())
        return Response(HostSerializer(resumed).data)

    @extend_schema(
        summary="Close circuit breaker",
        description="Close the host's circuit breaker by hand (the partner is known to be "
        "back): calls go again at once, and its failures are counted afresh.",
        request=None,
        responses=OPERATION,
    )
    @action(detail=True, methods=["post"], url_path="close-breaker")
    def close_breaker(self, request, host=None):
        closed = host_close_breaker(host=self.get_object(), actor=request.user.get_username())
        return Response(HostSerializer(closed).data)
