from django.urls import path

from definitions.api import api_router

from .views import CallbackView, OrderViewSet

router = api_router()
router.register("orders", OrderViewSet, basename="order")

urlpatterns = [
    *router.urls,
    path("callbacks/<str:token>/", CallbackView.as_view(), name="callback"),
]
