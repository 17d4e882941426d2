"""Versions in the admin: the list of versions, comparing two, restoring one, the orders
pinned to each version, and the warning before a change strands failed orders."""

from __future__ import annotations

import itertools
import json
from html import unescape

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils.html import strip_tags

from apicalls.models import ApiCall
from apicalls.services import api_call_delete, api_call_save
from blueprints import admin as blueprints_admin
from blueprints import selectors
from blueprints.models import Blueprint
from blueprints.services import blueprint_save, workflow_snapshot
from orders.models import Order
from tests.blueprints import definitions
from tests.definitions.test_admin import blueprint_post

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)


def change_url(blueprint) -> str:
    return reverse("admin:blueprints_blueprint_change", args=[blueprint.pk])


def versions_url(blueprint, **query) -> str:
    url = reverse("admin:blueprints_blueprint_versions", args=[blueprint.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def in_html(url: str) -> str:
    return url.replace("&", "&amp;")


def restore_url(blueprint, version: int) -> str:
    return reverse("admin:blueprints_blueprint_version_restore", args=[blueprint.pk, version])


def second_version(blueprint) -> Blueprint:
    """Version 2: the review step renamed "ops-review", its choice branch following."""
    definition = definitions.blueprint()
    definition["steps"][1]["choice"][0]["next"] = "ops-review"
    definition["steps"][4]["id"] = "ops-review"
    return blueprint_save(definition=definition)


def messages_of(response) -> list[str]:
    """The messages' text, without the markup around it."""
    return [unescape(strip_tags(str(m))) for m in get_messages(response.wsgi_request)]


def make_order(blueprint, *, status: str, step: str = "charge") -> Order:
    """An order on the blueprint as it is now, at `step` (failed there when it failed)."""
    return Order.objects.create(
        order_id=f"V-{next(_numbers):04d}",
        workflow=blueprint.slug,
        snapshot=workflow_snapshot(blueprint=Blueprint.objects.get(pk=blueprint.pk)),
        payload={},
        status=status,
        current_step=step,
        failed_step=step if status == "failed" else "",
        resume_point={"step": step, "data": {}} if status == "failed" else {},
    )


# -- the list of versions ------------------------------------------------------------------


def test_versions_list_links_each_version_to_a_comparison(admin_client_for, editor, blueprint):
    second_version(blueprint)
    page = admin_client_for(editor).get(change_url(blueprint)).text
    assert "Each order runs on the blueprint and the API calls it uses" in page
    assert f'href="{versions_url(blueprint)}" id="compare-versions"' in page
    assert f'href="{in_html(versions_url(blueprint, a=1, b=2))}">with the one before' in page
    assert f'href="{in_html(versions_url(blueprint, a=1, b=2))}">with the current one' in page
    assert f'href="{in_html(versions_url(blueprint, a=2, b=1))}#restore"' in page


def test_readers_compare_versions_but_are_not_offered_a_restore(
    admin_client_for, support, blueprint
):
    second_version(blueprint)
    client = admin_client_for(support)
    page = client.get(change_url(blueprint)).text
    assert "with the current one" in page and "restore…" not in page
    comparison = client.get(versions_url(blueprint, a=2, b=1))
    assert comparison.status_code == 200
    assert 'id="restore"' not in comparison.text
    assert client.post(restore_url(blueprint, 1)).status_code == 403
    assert Blueprint.objects.get(pk=blueprint.pk).version == 2


# -- comparing two versions ------------------------------------------------------------------


def test_comparison_pairs_removed_and_added_lines(admin_client_for, editor, blueprint):
    second_version(blueprint)
    response = admin_client_for(editor).get(versions_url(blueprint, a=1, b=2))
    rows = [row for row in response.context["rows"] if row.kind != "same"]
    changed = [(row.old.strip(), row.new.strip()) for row in rows if row.kind == "changed"]
    assert ('"next": "review"', '"next": "ops-review"') in changed
    assert ('"id": "review",', '"id": "ops-review",') in changed
    assert 'class="sm-diff-changed"' in response.text
    assert response.context["added"] == 2 and response.context["removed"] == 2


def test_comparison_defaults_to_the_current_version_and_the_one_before(
    admin_client_for, editor, blueprint
):
    second_version(blueprint)
    response = admin_client_for(editor).get(versions_url(blueprint))
    assert (response.context["old"].version, response.context["new"].version) == (1, 2)


def test_comparison_shows_folded_context_for_long_unchanged_parts(
    admin_client_for, editor, blueprint
):
    second_version(blueprint)
    response = admin_client_for(editor).get(versions_url(blueprint, a=1, b=2))
    assert any(row.kind == "folded" for row in response.context["rows"])
    assert "unchanged lines" in response.text


def test_comparing_a_version_that_does_not_exist_is_a_404(admin_client_for, editor, blueprint):
    assert admin_client_for(editor).get(versions_url(blueprint, a=1, b=7)).status_code == 404


def test_api_call_versions_are_compared_too(admin_client_for, editor, blueprint):
    changed = {**definitions.api_call("payments.charge"), "timeout_seconds": 20}
    api_call = api_call_save(definition=changed)
    url = reverse("admin:apicalls_apicall_versions", args=[api_call.pk])
    response = admin_client_for(editor).get(url)
    assert [
        (row.old.strip(), row.new.strip())
        for row in response.context["rows"]
        if row.kind == "changed"
    ] == [('"timeout_seconds": 10,', '"timeout_seconds": 20,')]
    assert "a new version of this API call is used by orders created from now on" in response.text


# -- restoring a version --------------------------------------------------------------------


def test_restore_saves_the_old_definition_as_a_new_version(admin_client_for, editor, blueprint):
    second_version(blueprint)
    response = admin_client_for(editor).post(restore_url(blueprint, 1))
    assert response.status_code == 302 and response.url == change_url(blueprint)
    restored = Blueprint.objects.get(pk=blueprint.pk)
    assert restored.version == 3
    assert restored.as_definition() == definitions.blueprint()
    assert restored.versions.get(version=3).created_by == editor
    assert "Version 1 restored as version 3." in messages_of(response)


def test_restore_refuses_a_version_that_no_longer_validates(admin_client_for, editor, blueprint):
    definition = definitions.blueprint()
    definition["steps"][4]["call"] = "mail.send"
    blueprint_save(definition=definition)  # version 2 no longer calls ops.ticket
    api_call_delete(api_call=ApiCall.objects.get(slug="ops.ticket"))
    response = admin_client_for(editor).post(restore_url(blueprint, 1))
    assert response.status_code == 200
    assert response.context["errors"] == ['steps[4] (id "review").call: no API call "ops.ticket"']
    assert "cannot be restored" in response.text
    assert Blueprint.objects.get(pk=blueprint.pk).version == 2


def test_restoring_the_current_definition_saves_nothing(admin_client_for, editor, blueprint):
    second_version(blueprint)
    blueprint_save(definition=definitions.blueprint())  # version 3 is version 1 again
    response = admin_client_for(editor).post(restore_url(blueprint, 1))
    assert "Version 1 is the current definition; nothing saved." in messages_of(response)
    assert Blueprint.objects.get(pk=blueprint.pk).version == 3


def test_restore_is_a_post(admin_client_for, editor, blueprint):
    second_version(blueprint)
    assert admin_client_for(editor).get(restore_url(blueprint, 1)).status_code == 405


def test_an_api_call_version_is_restored_through_its_service(admin_client_for, editor, blueprint):
    api_call = api_call_save(
        definition={**definitions.api_call("payments.charge"), "timeout_seconds": 20}
    )
    url = reverse("admin:apicalls_apicall_version_restore", args=[api_call.pk, 1])
    admin_client_for(editor).post(url)
    api_call.refresh_from_db()
    assert api_call.version == 3
    assert api_call.as_definition() == definitions.api_call("payments.charge")


# -- orders pinned to each version ------------------------------------------------------------


def test_each_version_counts_its_orders_by_status_and_links_to_them(
    admin_client_for, editor, blueprint
):
    first = [make_order(blueprint, status="failed"), make_order(blueprint, status="completed")]
    make_order(blueprint, status="failed")
    second_version(blueprint)
    later = make_order(blueprint, status="pending", step="validate")
    client = admin_client_for(editor)
    page = client.get(change_url(blueprint)).text

    assert ">all 3</a>" in page and ">2 failed</a>" in page and ">1 completed</a>" in page
    assert ">all 1</a>" in page and ">1 pending</a>" in page
    link = _link(page, "2 failed")
    listed = client.get(link).context["cl"].result_list
    assert sorted(order.order_id for order in listed) == sorted(
        order.order_id for order in Order.objects.filter(status="failed")
    )
    assert [
        order.order_id for order in client.get(_link(page, "all 1")).context["cl"].result_list
    ] == [later.order_id]
    assert first[0].order_id in {
        o.order_id for o in client.get(_link(page, "all 3")).context["cl"].result_list
    }


def _link(page: str, text: str) -> str:
    end = page.index(f">{text}</a>")
    start = page.rindex('href="', 0, end) + len('href="')
    return page[start : page.index('"', start)].replace("&amp;", "&")


def test_counts_stop_at_the_cap(admin_client_for, editor, blueprint, monkeypatch):
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    monkeypatch.setattr(blueprints_admin, "COUNT_CAP", 2)
    for _ in range(3):
        make_order(blueprint, status="completed")
    make_order(blueprint, status="failed")
    page = admin_client_for(editor).get(change_url(blueprint)).text
    assert ">all 2+</a>" in page and ">2+ completed</a>" in page and ">1 failed</a>" in page


def test_orders_by_version_costs_a_query_per_version_with_orders(
    blueprint, django_assert_num_queries
):
    for _ in range(3):
        make_order(blueprint, status="completed")
    second_version(blueprint)
    make_order(blueprint, status="failed")
    with django_assert_num_queries(3):
        pinned = selectors.orders_by_version(workflow=blueprint.slug)
    assert {v: p.by_status for v, p in pinned.items()} == {
        2: {"failed": 1},
        1: {"completed": 3},
    }


# -- a change that strands failed orders ------------------------------------------------------


def test_renaming_a_step_failed_orders_are_parked_at_asks_first(
    admin_client_for, editor, blueprint
):
    for _ in range(2):
        make_order(blueprint, status="failed", step="charge")
    make_order(blueprint, status="completed", step="charge")
    definition = definitions.blueprint()
    definition["steps"][1]["default"] = "pay"
    definition["steps"][2]["id"] = "pay"
    client = admin_client_for(editor)

    response = client.post(change_url(blueprint), blueprint_post(definition))

    assert response.status_code == 200
    (error,) = response.context["adminform"].form.errors["save_anyway"]
    assert error.startswith(
        '2 failed order(s) are parked at step "charge", which this change removes or renames'
    )
    assert 'name="save_anyway"' in response.text
    assert Blueprint.objects.get(pk=blueprint.pk).version == 1

    response = client.post(
        change_url(blueprint), {**blueprint_post(definition), "save_anyway": "on"}
    )
    assert response.status_code == 302
    assert Blueprint.objects.get(pk=blueprint.pk).version == 2


def test_no_question_when_no_failed_order_is_parked_at_the_step(
    admin_client_for, editor, blueprint
):
    make_order(blueprint, status="failed", step="validate")
    make_order(blueprint, status="waiting", step="charge")
    definition = definitions.blueprint()
    definition["steps"][1]["default"] = "pay"
    definition["steps"][2]["id"] = "pay"
    response = admin_client_for(editor).post(change_url(blueprint), blueprint_post(definition))
    assert response.status_code == 302
    assert 'name="save_anyway"' not in admin_client_for(editor).get(change_url(blueprint)).text


def test_restoring_a_version_without_the_parked_step_asks_first(
    admin_client_for, editor, blueprint
):
    second_version(blueprint)
    make_order(blueprint, status="failed", step="ops-review")
    client = admin_client_for(editor)
    page = client.get(versions_url(blueprint, a=2, b=1))
    assert page.context["restore_warning"].startswith(
        '1 failed order(s) are parked at step "ops-review"'
    )

    refused = client.post(restore_url(blueprint, 1))
    assert refused.context["not_ticked"] and Blueprint.objects.get(pk=blueprint.pk).version == 2
    client.post(restore_url(blueprint, 1), {"save_anyway": "1"})
    assert Blueprint.objects.get(pk=blueprint.pk).version == 3


# -- secrets not set on this machine ----------------------------------------------------------


def test_saving_with_an_unset_secret_warns_after_saving(
    admin_client_for, editor, blueprint, monkeypatch
):
    monkeypatch.delenv("STATE_MANAGER_SECRET_OPS_URL", raising=False)
    api_call = ApiCall.objects.get(slug="ops.ticket")
    body = {"method": "POST", "url": "{{ secrets.OPS_URL }}/tickets", "timeout_seconds": 5}
    response = admin_client_for(editor).post(
        reverse("admin:apicalls_apicall_change", args=[api_call.pk]),
        {
            "slug": "ops.ticket",
            "name": "Open a review ticket",
            "definition": json.dumps(body),
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert messages_of(response)[-1] == (
        'url: secret "OPS_URL" is not set on this machine '
        "(environment variable STATE_MANAGER_SECRET_OPS_URL)"
    )
    assert ApiCall.objects.get(pk=api_call.pk).version == 2


def test_an_unset_secret_is_warned_about_beside_the_errors_of_a_refused_save(
    admin_client_for, editor, blueprint, monkeypatch
):
    monkeypatch.delenv("STATE_MANAGER_SECRET_MAIL_FROM", raising=False)
    definition = definitions.blueprint()
    definition["steps"][3]["parallel"][1]["params"]["from"] = "{{ secrets.MAIL_FROM }}"
    definition["steps"][2]["on_failed"] = "refnd"
    response = admin_client_for(editor).post(change_url(blueprint), blueprint_post(definition))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["steps"] == [
        'steps[2] (id "charge").on_failed: no step "refnd"'
    ]
    assert messages_of(response) == [
        'steps[3] (id "fulfil").parallel[1] (id "mail").params.from: secret "MAIL_FROM" '
        "is not set on this machine (environment variable STATE_MANAGER_SECRET_MAIL_FROM)"
    ]
