"""A message step in the dry run (a sample message) and in the diagram."""

from blueprints.diagram import blueprint_svg
from orders.engine.config import EngineConfig
from orders.engine.dry_run import dry_run

BLUEPRINT = {
    "slug": "pay",
    "name": "Pay",
    "steps": [
        {
            "id": "paid",
            "message": {
                "name": "payment.captured",
                "key": "{{ input.payment }}",
                "timeout_seconds": 3600,
            },
            "save": {"paid_with": "{{ message.key }}"},
            "on_failed": "late",
        },
        {"id": "done", "end": "completed"},
        {"id": "late", "end": "failed"},
    ],
}


def test_the_dry_run_answers_a_message_step_with_a_sample_message():
    result = dry_run(
        {"blueprint": BLUEPRINT, "api_calls": {}},
        payload={"payment": "pi_1"},
        responses={},
        config=EngineConfig.from_settings(),
    )

    assert result.end.status == "completed" and result.end.data == {"paid_with": "pi_1"}
    notes = result.steps[0].notes
    assert notes[0].startswith("the order would wait up to 3600 s for a message payment.captured")


def test_the_diagram_draws_a_message_step_with_its_edges():
    svg = blueprint_svg(BLUEPRINT)
    assert "waits for message payment.captured" in svg
    assert 'class="sm-box message' in svg
