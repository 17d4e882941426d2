from django.urls import path

from core.api import api_router

from .dry_run import BlueprintDryRunView
from .impact import BlueprintImpactView
from .views import CallbackView, OrderViewSet

router = api_router()
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    *router.urls,
    path("callbacks/<str:token>/", CallbackView.as_view(), name="callback"),
    path("blueprints/<str:slug>/dry-run/", BlueprintDryRunView.as_view(), name="blueprint-dry-run"),
    path("blueprints/<str:slug>/impact/", BlueprintImpactView.as_view(), name="blueprint-impact"),
]
