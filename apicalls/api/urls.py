from core.api import api_router

from .views import ApiCallViewSet

router = api_router()
router.register("api-calls", ApiCallViewSet, basename="api-call")

urlpatterns = router.urls
