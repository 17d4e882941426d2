from core.api import api_router

from .views import BlueprintViewSet

router = api_router()
router.register("blueprints", BlueprintViewSet, basename="blueprint")

urlpatterns = router.urls
