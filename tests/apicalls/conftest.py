"""API call tests use the definitions fixtures of the blueprint tests."""

from tests.blueprints.conftest import editor, example_api_calls

__all__ = ["editor", "example_api_calls"]
