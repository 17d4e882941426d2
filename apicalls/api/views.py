from apicalls.models import ApiCall
from apicalls.services import api_call_delete, api_call_save
from definitions.api import DefinitionViewSet, definition_schema

from .serializers import ApiCallSerializer


@definition_schema("API call", ApiCallSerializer)
class ApiCallViewSet(DefinitionViewSet):
    """API calls; reading needs apicalls.view_apicall, writing the add/change/delete ones."""

    queryset = ApiCall.objects.all()
    serializer_class = ApiCallSerializer
    noun = "API call"

    def save(self, definition, user):
        return api_call_save(definition=definition, user=user)

    def remove(self, instance):
        api_call_delete(api_call=instance)
