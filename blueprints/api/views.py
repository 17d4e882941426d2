from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.response import Response

from blueprints.models import Blueprint
from blueprints.services import blueprint_pause, blueprint_resume, blueprint_save
from core.api import Detail
from definitions.api import DefinitionViewSet, definition_schema

from .serializers import BlueprintPauseSerializer, BlueprintSerializer

PAUSE_RESPONSES = {200: BlueprintPauseSerializer, 401: Detail, 403: Detail, 404: Detail}


@definition_schema("blueprint", BlueprintSerializer)
class BlueprintViewSet(DefinitionViewSet):
    """Blueprints; reading needs blueprints.view_blueprint, writing the add/change/delete ones,
    pausing and resuming blueprints.pause_blueprint."""

    queryset = Blueprint.objects.all()
    serializer_class = BlueprintSerializer
    noun = "blueprint"
    action_permissions = {
        "pause": ["blueprints.pause_blueprint"],
        "resume": ["blueprints.pause_blueprint"],
    }

    def save(self, definition, user):
        return blueprint_save(definition=definition, user=user)

    def remove(self, instance):
        instance.delete()

    @extend_schema(
        summary="Pause blueprint",
        description="Batches leave the blueprint's orders due until it is resumed; the "
        "webhook still accepts new ones, and an order in a turn finishes that turn. Pausing "
        "a paused blueprint keeps when and by whom it was first paused.",
        request=None,
        responses=PAUSE_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, slug=None):
        blueprint = blueprint_pause(blueprint=self.get_object(), actor=request.user.get_username())
        return Response(BlueprintPauseSerializer(blueprint).data)

    @extend_schema(
        summary="Resume blueprint",
        description="Batches claim the blueprint's due orders again; resuming a blueprint "
        "that is not paused changes nothing.",
        request=None,
        responses=PAUSE_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, slug=None):
        blueprint = blueprint_resume(blueprint=self.get_object(), actor=request.user.get_username())
        return Response(BlueprintPauseSerializer(blueprint).data)
