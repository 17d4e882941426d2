from core.api import api_router

from .views import HostViewSet

router = api_router()
router.register("hosts", HostViewSet, basename="host")

urlpatterns = router.urls
