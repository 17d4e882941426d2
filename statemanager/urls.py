from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from statemanager.health import health

api = [
    path("", include("orders.api.urls")),
    path("", include("apicalls.api.urls")),
    path("", include("blueprints.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("health/", health, name="health"),
    path("", include("blueprints.urls")),
]
