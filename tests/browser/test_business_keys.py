"""Support staff find orders by business key in the admin list and reprocess them all."""

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from orders.models import Order
from tests.admin_fixtures import staff_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def for_customer(orders: list[Order], customer: str) -> None:
    Order.objects.filter(pk__in=[order.pk for order in orders]).update(
        payload={"sku": "TEE", "qty": 1, "customer": {"id": customer}}
    )


def test_support_searches_a_customer_and_reprocesses_all_their_orders(page, make_orders):
    for_customer(make_orders(55, log=False), "C-42")
    for_customer(make_orders(5, status=Order.Status.COMPLETED, log=False), "C-42")
    for_customer(make_orders(20, log=False), "C-7")
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/")

    search = page.find("#searchbar")
    search.send_keys("payload.customer.id=C-42", Keys.ENTER)
    WebDriverWait(page.driver, 10).until(lambda driver: "?q=" in driver.current_url)
    assert "60 results" in page.find("#changelist-search").text
    assert len(page.find_all("#result_list tbody tr")) == 50  # the first page of 60
    page.find("#action-toggle").click()
    page.find(".actions .question a").click()  # "Select all 60 orders"
    assert "All 60" in page.find(".actions .all").text
    Select(page.find("select[name=action]")).select_by_value("reprocess_from_failed")
    page.screenshot("13-2-business-key-search-list")
    page.find("button[name=index]").click()

    assert "Selected: 60 orders" in page.find("#confirm-total").text
    assert "Will be reprocessed: 55" in page.find("#confirm-touched").text
    page.screenshot("13-2-business-key-search")
    assert Order.objects.filter(status=Order.Status.PENDING).count() == 0


def test_support_follows_a_link_with_a_business_key_to_the_filtered_list(page, make_orders):
    for_customer(make_orders(3, log=False), "C-7")
    for_customer(make_orders(4, log=False), "C-8")
    page.log_in(staff_in("Support"))
    page.open("/admin/orders/order/?payload.customer.id=C-7")

    assert len(page.find_all("#result_list tbody tr")) == 3
    sidebar = page.find("#changelist-filter").text
    assert "By business key" in sidebar and "payload.customer.id = C-7" in sidebar
    page.screenshot("13-2-business-key-url")

    choices = page.find_all("#changelist-filter details[data-filter-title='business key'] li")
    assert [choice.text for choice in choices] == ["All", "payload.customer.id = C-7"]
    choices[0].find_element("css selector", "a").click()
    WebDriverWait(page.driver, 10).until(lambda driver: "payload" not in driver.current_url)
    assert len(page.find_all("#result_list tbody tr")) == 7
