"""The contract's e-commerce example (section 3) and the API calls it uses (section 2)."""

import copy

API_CALLS = [
    {
        "slug": "shop.quote",
        "name": "Quote the order",
        "method": "POST",
        "url": "{{ secrets.SHOP_URL }}/quotes",
        "body": {"sku": "{{ input.sku }}", "qty": "{{ input.qty }}"},
    },
    {
        "slug": "payments.charge",
        "name": "Charge the customer's card",
        "method": "POST",
        "url": "{{ secrets.PAYMENTS_URL }}/charges",
        "headers": {"Authorization": "Bearer {{ secrets.PAYMENTS_TOKEN }}"},
        "query": {"expand": "balance"},
        "body": {
            "amount": "{{ data.total }}",
            "currency": "EUR",
            "reference": "{{ order.order_id }}",
        },
        "timeout_seconds": 10,
        "success_when": "{{ response.status in [200, 201] }}",
        "retry": {
            "max_attempts": 3,
            "backoff_seconds": 2,
            "backoff_rate": 2.0,
            "max_backoff_seconds": 300,
        },
        "save": {"charge_id": "{{ response.body.id }}"},
    },
    {
        "slug": "shipping.create",
        "name": "Create the shipment",
        "method": "POST",
        "url": "{{ secrets.SHIPPING_URL }}/shipments",
        "body": {"sku": "{{ input.sku }}", "qty": "{{ input.qty }}"},
    },
    {
        "slug": "mail.send",
        "name": "Mail the customer",
        "method": "POST",
        "url": "{{ secrets.MAIL_URL }}/messages",
        "body": {"to": "{{ input.email }}", "template": "{{ params.template }}"},
    },
    {
        "slug": "ops.ticket",
        "name": "Open a review ticket",
        "method": "POST",
        "url": "{{ secrets.OPS_URL }}/tickets",
        "body": {"order": "{{ order.order_id }}"},
    },
]

BLUEPRINT = {
    "slug": "ecommerce-order",
    "name": "E-commerce order",
    "input_schema": {
        "type": "object",
        "required": ["sku", "qty", "email"],
        "properties": {
            "sku": {"type": "string"},
            "qty": {"type": "integer", "minimum": 1},
            "email": {"type": "string"},
        },
    },
    "steps": [
        {
            "id": "validate",
            "call": "shop.quote",
            "save": {"total": "{{ response.body.total }}"},
            "on_failed": "reject",
        },
        {
            "id": "route",
            "choice": [{"when": "{{ data.total > 1000 }}", "next": "review"}],
            "default": "charge",
        },
        {
            "id": "charge",
            "call": "payments.charge",
            "on_failed": "reject",
            "retry": {"max_attempts": 5, "backoff_seconds": 1, "backoff_rate": 2},
        },
        {
            "id": "fulfil",
            "parallel": [
                {
                    "id": "ship",
                    "call": "shipping.create",
                    "save": {"tracking": "{{ response.body.tracking | first }}"},
                },
                {"id": "mail", "call": "mail.send", "params": {"template": "order-confirmed"}},
            ],
            "end": "completed",
        },
        {"id": "review", "call": "ops.ticket", "end": "completed"},
        {"id": "reject", "end": "failed", "error": "order could not be charged"},
    ],
}

API_CALL_SLUGS = {api_call["slug"] for api_call in API_CALLS}


def api_call(slug: str = "payments.charge") -> dict:
    """A fresh copy of one of the example's API calls, safe to change in a test."""
    return copy.deepcopy(next(call for call in API_CALLS if call["slug"] == slug))


def blueprint() -> dict:
    """A fresh copy of the example blueprint, safe to change in a test."""
    return copy.deepcopy(BLUEPRINT)


def document() -> dict:
    """An import document holding the whole example."""
    return {"api_calls": copy.deepcopy(API_CALLS), "blueprints": [blueprint()]}
