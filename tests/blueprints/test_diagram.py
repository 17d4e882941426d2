"""The flow diagram of a blueprint, and of an order's path through it."""

import re

from blueprints.diagram import blueprint_svg
from tests.blueprints import definitions


def edge_labels(svg: str) -> list[str]:
    return re.findall(r'<text class="sm-label[^"]*"[^>]*>([^<]*)</text>', svg)


def test_every_step_and_branch_is_drawn():
    svg = blueprint_svg(definitions.blueprint())
    for step in ("validate", "route", "charge", "fulfil", "review", "reject"):
        assert f'data-step="{step}"' in svg
    assert 'data-step="fulfil.ship"' in svg and 'data-step="fulfil.mail"' in svg


def test_choice_branches_are_labelled_with_their_condition_and_default():
    svg = blueprint_svg(definitions.blueprint())
    labels = edge_labels(svg)
    assert "data.total &gt; 1000" in labels
    assert "default" in labels
    assert 'data-edge="route-&gt;review"' in svg and 'data-edge="route-&gt;charge"' in svg


def test_on_failed_edges_are_dashed_and_labelled():
    svg = blueprint_svg(definitions.blueprint())
    assert edge_labels(svg).count("on_failed") == 2
    assert re.search(r'data-edge="charge-&gt;reject".*?class="sm-edge failed"', svg)


def test_explicit_next_is_labelled():
    svg = blueprint_svg(
        {
            "steps": [
                {"id": "a", "call": "x", "next": "c"},
                {"id": "b", "call": "y"},
                {"id": "c", "end": "completed"},
            ]
        }
    )
    assert 'data-edge="a-&gt;c"' in svg
    assert "next" in edge_labels(svg)


def test_falling_off_the_last_step_completes_the_order():
    svg = blueprint_svg({"steps": [{"id": "only", "call": "x"}]})
    assert 'data-edge="only-&gt;(completed)"' in svg


def test_an_orders_path_and_current_step_are_highlighted():
    svg = blueprint_svg(
        definitions.blueprint(),
        taken=["validate", "route", "charge", "fulfil.ship"],
        current="fulfil",
    )
    assert re.search(
        r'data-step="charge"><title>charge</title><rect class="sm-box call taken"', svg
    )
    assert 'class="sm-box parallel taken current"' in svg
    assert re.search(r'data-step="fulfil.ship">.*?<rect class="sm-box taken"', svg)
    assert re.search(r'data-step="review"><title>review</title><rect class="sm-box call"', svg)


def test_text_is_escaped():
    svg = blueprint_svg({"steps": [{"id": "<script>", "end": "completed"}]})
    assert "<script>" not in svg


def test_a_malformed_blueprint_draws_what_it_can():
    assert "no steps" in blueprint_svg({"steps": "not a list"})
    svg = blueprint_svg({"steps": [{"id": "a", "next": "missing", "call": "x"}, 7]})
    assert 'data-step="a"' in svg
