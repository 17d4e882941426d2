"""Post demo orders that between them take every branch of the `ecommerce-order` blueprint."""

from __future__ import annotations

import secrets
import time

import requests
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from core.conf import conf
from orders.models import Order
from orders.services import order_create

WORKFLOW = "ecommerce-order"

# (what the payload leads to, payload); prices are in demo/fake_apis.py.
DEMO_ORDERS = [
    ("charge, then ship + mail in parallel", {"sku": "TEE", "qty": 2, "email": "ann@example.com"}),
    ("total over 1000: review ticket", {"sku": "LAPTOP", "qty": 1, "email": "bob@example.com"}),
    ("card declined (402): reject", {"sku": "MUG", "qty": 3, "email": "decline@example.com"}),
    ("unknown sku (404 at quote): reject", {"sku": "NOPE", "qty": 1, "email": "cy@example.com"}),
]

FINISHED = {Order.Status.COMPLETED, Order.Status.FAILED, Order.Status.CANCELLED}


class Command(BaseCommand):
    help = (
        "Post a demo order for every branch of the e-commerce blueprint: through the "
        "webhook over HTTP when the server answers, else through the order service directly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url",
            default=conf().public_url,
            help="where the server runs (default STATE_MANAGER_PUBLIC_URL)",
        )
        parser.add_argument(
            "--token", help="webhook token (default: the demo integration user's token)"
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="wait up to this long for the orders to finish and print how each ended",
        )

    def handle(self, *args, url: str, token: str | None, wait: float, **options):
        url = url.rstrip("/")
        run = secrets.token_hex(3)
        orders = [
            (f"demo-{run}-{n}", branch, payload)
            for n, (branch, payload) in enumerate(DEMO_ORDERS, start=1)
        ]
        if self.server_is_up(url):
            self.stdout.write(f"Posting to the webhook {url}/api/orders/ over HTTP.")
            self.post_over_http(url, token or self.demo_token(), orders)
        else:
            self.stdout.write(f"No server at {url}: creating the orders with the order service.")
            self.create_in_process(orders)
        self.stdout.write(
            "The worker picks them up on its next batch "
            "(or run `python manage.py process_orders --once`)."
        )
        if wait:
            self.wait_for(orders, wait)

    def server_is_up(self, url: str) -> bool:
        try:
            requests.get(f"{url}/health/", timeout=3)
        except requests.RequestException:
            return False
        return True

    def demo_token(self) -> str:
        token = Token.objects.filter(user__username="demo-integration").first()
        if token is None:
            raise CommandError("no demo token: run `python manage.py demo_setup` first")
        return token.key

    def post_over_http(self, url: str, token: str, orders: list) -> None:
        for order_id, branch, payload in orders:
            response = requests.post(
                f"{url}/api/orders/",
                json={"order_id": order_id, "workflow": WORKFLOW, "payload": payload},
                headers={"Authorization": f"Token {token}"},
                timeout=10,
            )
            if response.status_code not in (200, 201):
                raise CommandError(f"{order_id}: HTTP {response.status_code} {response.text[:500]}")
            self.stdout.write(f"  {order_id}  HTTP {response.status_code}  -> {branch}")

    def create_in_process(self, orders: list) -> None:
        for order_id, branch, payload in orders:
            order_create(order_id=order_id, workflow=WORKFLOW, payload=payload)
            self.stdout.write(f"  {order_id}  created  -> {branch}")

    def wait_for(self, orders: list, seconds: float) -> None:
        ids = [order_id for order_id, _, _ in orders]
        deadline = time.monotonic() + seconds
        while True:
            found = {order.order_id: order for order in Order.objects.filter(order_id__in=ids)}
            if len(found) == len(ids) and all(o.status in FINISHED for o in found.values()):
                break
            if time.monotonic() > deadline:
                waiting = [i for i in ids if i not in found or found[i].status not in FINISHED]
                raise CommandError(f"not finished after {seconds:g}s: {', '.join(waiting)}")
            time.sleep(1)
        for order_id in ids:
            order = found[order_id]
            ended = order.error or ", ".join(f"{k}={v}" for k, v in sorted(order.data.items()))
            self.stdout.write(f"  {order_id}  {order.status}  {ended}")
