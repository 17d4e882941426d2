"""A blueprint's concurrency key in a real browser, as a blueprint editor: a key that names
what it may not is refused at its field, a good one is saved with a new version."""

import pytest

from blueprints.models import Blueprint
from tests.admin_fixtures import staff_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def set_key(page, key: str) -> None:
    """Save the key, and wait for the page the save answers with (not the one before)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    field = page.find("input[name=concurrency_key]")
    field.clear()
    field.send_keys(key)
    before = page.find("html")
    page.find("input[name=_continue]").click()
    WebDriverWait(page.driver, 10).until(expected_conditions.staleness_of(before))


def test_an_editor_keys_a_blueprint_by_customer(page, blueprint):
    page.log_in(staff_in("Blueprint editors"))
    page.open(f"/admin/blueprints/blueprint/{blueprint.pk}/change/")

    set_key(page, "{{ data.customer }}")
    error = page.find(".field-concurrency_key .errorlist").text
    assert "concurrency_key" in error and "data" in error
    page.screenshot("14-6-concurrency-key-error")

    set_key(page, "{{ input.email }}")
    assert not page.find_all(".errorlist")
    saved = Blueprint.objects.get(pk=blueprint.pk)
    assert (saved.concurrency_key, saved.version) == ("{{ input.email }}", 2)
    assert page.find("input[name=concurrency_key]").get_attribute("value") == "{{ input.email }}"
    page.screenshot("14-6-concurrency-key")
