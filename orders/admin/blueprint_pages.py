"""The blueprint's pages that run the engine, added to the admin site from here (the orders
layer) rather than by the blueprints' admin, which may not know the engine: its Dry run
and its Impact of a change. Importing the `orders.admin` package imports this module,
which extends the site's URLs once."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from orders.admin.dry_run import blueprint_dry_run_view
from orders.admin.impact import blueprint_impact_view

PAGES = [
    ("dry-run", blueprint_dry_run_view, "blueprints_blueprint_dry_run"),
    ("impact", blueprint_impact_view, "blueprints_blueprint_impact"),
]

_site_urls = admin.site.get_urls


def site_urls():
    """The admin's URLs with the blueprint's engine pages beside its own."""
    pages = [
        path(
            f"blueprints/blueprint/<path:object_id>/{suffix}/",
            admin.site.admin_view(view),
            name=name,
        )
        for suffix, view, name in PAGES
    ]
    return [*pages, *_site_urls()]


admin.site.get_urls = site_urls
