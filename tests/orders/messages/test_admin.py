"""Messages from partners in the admin: waits, messages, sources and their test, the
dashboard, and resolving a wait by hand; through Django's test client."""

import pytest

from orders.message_sources import source_save
from orders.messages import message_receive
from orders.models import Message, MessageSource, MessageWait
from tests.admin_fixtures import *  # noqa: F403
from tests.orders.messages.stripe_like import SOURCE, WEBHOOK_SECRET
from tests.orders.messages.test_message_step import STEPS
from tests.orders.workflows import make_order, process


@pytest.fixture(autouse=True)
def _webhook_secret(monkeypatch):
    monkeypatch.setenv("STATE_MANAGER_SECRET_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)


@pytest.fixture
def waiting_order():
    return process(make_order(STEPS, payload={"payment": "pi_42"}))


@pytest.fixture
def stripe_source(editor, admin_client_for):
    return source_save(definition=SOURCE)


def test_the_order_page_says_what_the_order_waits_for(admin_client_for, support, waiting_order):
    page = admin_client_for(support).get(f"/admin/orders/order/{waiting_order.pk}/change/")
    text = page.content.decode()
    assert 'id="message-name">payment.captured<' in text
    assert 'id="message-key">pi_42<' in text
    assert 'id="resolve-message"' in text


def test_support_resolves_a_wait_by_hand_logged_with_who(admin_client_for, support, waiting_order):
    client = admin_client_for(support)
    url = f"/admin/orders/order/{waiting_order.pk}/resolve-message/"

    answer = client.post(url, {"reason": "paid by phone", "data": '{"amount": 3}'})

    assert answer.status_code == 302
    entry = waiting_order.log.get(kind="message")
    assert entry.actor == support.username and entry.request == {"reason": "paid by phone"}
    order = process(waiting_order)
    assert order.status == "completed" and order.data["amount"] == 3
    page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert f"resolved by hand by <strong>{support.username}</strong>" in page


def test_a_wait_is_not_resolved_without_a_reason(admin_client_for, support, waiting_order):
    url = f"/admin/orders/order/{waiting_order.pk}/resolve-message/"
    admin_client_for(support).post(url, {"reason": " "})
    assert MessageWait.objects.get().status == "waiting"


def test_the_waits_list_shows_name_key_since_and_until(admin_client_for, support, waiting_order):
    page = admin_client_for(support).get("/admin/orders/messagewait/").content.decode()
    assert "pi_42" in page and waiting_order.order_id in page


def test_the_messages_list_shows_who_took_each_and_the_kept_ones_expiry(
    admin_client_for, support, waiting_order
):
    message_receive(name="payment.captured", key="pi_42", data={"amount": 1}, sender_id="e1")
    message_receive(name="payment.captured", key="pi_nobody", sender_id="e2")
    client = admin_client_for(support)

    listed = client.get("/admin/orders/message/").content.decode()
    kept = client.get("/admin/orders/message/?kept=yes").content.decode()

    assert waiting_order.order_id in listed and "no order yet" in listed
    assert "pi_nobody" in kept and "pi_42" not in kept


def test_the_dashboard_counts_waits_and_kept_messages(admin_client_for, support, waiting_order):
    message_receive(name="other", key="k")
    page = admin_client_for(support).get("/admin/").content.decode()
    assert 'id="dashboard-message-waiting"><a href="/admin/orders/messagewait/">1<' in page
    assert 'id="dashboard-messages-kept"><a href="/admin/orders/message/?kept=yes">1<' in page
    assert 'id="dashboard-oldest-wait"' in page


def test_a_test_message_signed_here_is_accepted_and_stores_nothing(
    admin_client_for, support, stripe_source
):
    url = f"/admin/orders/messagesource/{stripe_source.pk}/test/"
    client = admin_client_for(support)
    assert 'id="id_body"' in client.get(url).content.decode()

    page = client.post(
        url, {"body": '{"id": "evt_1", "type": "t.x", "data": {"object": {"id": "pi_7"}}}'}
    )

    text = page.content.decode()
    assert 'id="test-accepted"' in text and "<code>pi_7</code>" in text
    assert not Message.objects.exists()


def test_a_test_message_with_a_forged_signature_shows_why_it_is_refused(
    admin_client_for, support, stripe_source
):
    url = f"/admin/orders/messagesource/{stripe_source.pk}/test/"
    page = admin_client_for(support).post(url, {"body": "{}", "signature": "t=1,v1=00"})
    text = page.content.decode()
    assert 'id="test-refused"' in text and "does not match" in text
    assert WEBHOOK_SECRET not in text


def test_editors_add_a_source_and_a_literal_secret_is_refused_at_its_field(
    admin_client_for, editor
):
    fields = {
        "name": "carrier",
        "secret": "s3cr3t",
        "signature_header": "X-Sig",
        "scheme": "hmac_hex",
        "message_name": "{{ body.event }}",
        "key": "{{ body.tracking }}",
        "sender_id": "",
        "tolerance_seconds": 300,
    }
    client = admin_client_for(editor)

    refused = client.post("/admin/orders/messagesource/add/", fields).content.decode()
    saved = client.post(
        "/admin/orders/messagesource/add/", {**fields, "secret": "{{ secrets.CARRIER }}"}
    )

    assert "must be a {{ secrets.NAME }} expression" in refused
    assert saved.status_code == 302
    assert MessageSource.objects.get().as_definition()["secret"] == "{{ secrets.CARRIER }}"


def test_support_may_view_sources_but_not_change_them(admin_client_for, support, stripe_source):
    client = admin_client_for(support)
    assert client.get("/admin/orders/messagesource/").status_code == 200
    assert client.get("/admin/orders/messagesource/add/").status_code == 403
