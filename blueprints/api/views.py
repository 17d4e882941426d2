from blueprints.models import Blueprint
from blueprints.services import blueprint_save
from definitions.api import DefinitionViewSet, definition_schema

from .serializers import BlueprintSerializer


@definition_schema("blueprint", BlueprintSerializer)
class BlueprintViewSet(DefinitionViewSet):
    """Blueprints; reading needs blueprints.view_blueprint, writing the add/change/delete ones."""

    queryset = Blueprint.objects.all()
    serializer_class = BlueprintSerializer
    noun = "blueprint"

    def save(self, definition, user):
        return blueprint_save(definition=definition, user=user)

    def remove(self, instance):
        instance.delete()
