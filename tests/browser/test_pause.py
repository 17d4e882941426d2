"""Pausing a blueprint in a real browser, as support: the button on the blueprint's page,
its banner, and the dashboard's paused blueprints with the due orders they hold."""

import pytest

from blueprints.models import Blueprint
from tests.browser.conftest import support_granted
from tests.statemanager.fixtures import shop, shop_order  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def support_who_may_pause():
    return support_granted("blueprints.migrations.0002_blueprint_pause", "grant_pause")


def test_support_pauses_a_blueprint_and_the_dashboard_shows_it(page, shop):  # noqa: F811
    for number in range(3):
        shop_order(f"A-{number}")
    support = support_who_may_pause()
    page.log_in(support)

    page.open(f"/admin/blueprints/blueprint/{shop.pk}/change/")
    page.find("#pause-button").click()

    banner = page.find("#blueprint-paused").text
    assert "Paused since" in banner and support.username in banner
    assert page.find_all("#resume-button")
    page.screenshot("14-2-paused-blueprint")
    assert Blueprint.objects.get(pk=shop.pk).paused_by == support.username

    page.open("/admin/")
    paused = page.find("#dashboard-paused").text
    assert "shop" in paused and support.username in paused and "3" in paused
    assert "3 held" in page.find("#dashboard-held").text
    page.screenshot("14-2-paused")
