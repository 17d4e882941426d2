"""Small things people trip over: the site's icon, the admin's "View site" link, what a
refused request logs, help texts."""

import logging

import pytest
from django.contrib.auth.models import User

from apicalls.models import ApiCall

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_user("clerk", is_staff=True))
    return client


def test_the_icon_is_served_at_favicon_ico_without_static_files(client, settings):
    settings.DEBUG = False

    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert "max-age=86400" in response["Cache-Control"]


def test_admin_pages_name_the_icon(admin_client):
    page = admin_client.get("/admin/").content.decode()

    assert '<link rel="icon" type="image/svg+xml" href="/favicon.ico">' in page


def test_view_site_opens_the_api_docs(admin_client):
    page = admin_client.get("/admin/")

    assert page.context["site_url"] == "/api/docs/"
    assert admin_client.get(page.context["site_url"]).status_code == 200


def test_a_refused_admin_page_logs_one_line(staff_client, caplog):
    response = staff_client.get("/admin/apicalls/apicall/")

    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /admin/apicalls/apicall/"
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


def test_a_server_error_keeps_its_traceback(caplog):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: /x", exc_info=True, extra={"status_code": 500}
        )

    assert "Traceback" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_try_it_help_texts_show_code_not_backticks(admin_client, shop):
    api_call = ApiCall.objects.get(slug="shop.charge")

    page = admin_client.get(f"/admin/apicalls/apicall/{api_call.pk}/try/").content.decode()

    for name in ("input.*", "params.*", "data.*"):
        assert f"(<code>{name}</code>)" in page
        assert f"`{name}`" not in page
