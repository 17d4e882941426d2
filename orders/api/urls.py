from django.urls import path

from core.api import api_router

from .dry_run import BlueprintDryRunView
from .impact import BlueprintImpactView
from .message_sources import MessageSourceViewSet, SourceMessageView
from .messages import MessageView
from .views import CallbackView, OrderViewSet

router = api_router()
router.register("orders", OrderViewSet, basename="order")
router.register("message-sources", MessageSourceViewSet, basename="message-source")

urlpatterns = [
    *router.urls,
    path("callbacks/<str:token>/", CallbackView.as_view(), name="callback"),
    path("messages/", MessageView.as_view(), name="messages"),
    path("messages/<str:source>/", SourceMessageView.as_view(), name="source-messages"),
    path("blueprints/<str:slug>/dry-run/", BlueprintDryRunView.as_view(), name="blueprint-dry-run"),
    path("blueprints/<str:slug>/impact/", BlueprintImpactView.as_view(), name="blueprint-impact"),
]
