from django.contrib import admin
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from statemanager.favicon import favicon
from statemanager.health import health
from statemanager.metrics import metrics

api = [
    path("", include("orders.api.urls")),
    path("", include("apicalls.api.urls")),
    path("", include("blueprints.api.urls")),
    path("", include("hosts.api.urls")),
    path("", include("connections.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    # The admin is the product's user interface: the bare address opens it.
    path("", RedirectView.as_view(url=reverse_lazy("admin:index")), name="home"),
    path("admin/", admin.site.urls),
    path("api/", include(api)),
    path("health/", health, name="health"),
    path("metrics", metrics, name="metrics"),
    path("favicon.ico", favicon, name="favicon"),
    path("", include("blueprints.urls")),
]

# The site has no front page of its own: the admin's "View site" opens the API docs.
admin.site.site_url = reverse_lazy("docs")
