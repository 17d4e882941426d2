from core.api import api_router

from .views import ConnectionViewSet

router = api_router()
router.register("connections", ConnectionViewSet, basename="connection")

urlpatterns = router.urls
