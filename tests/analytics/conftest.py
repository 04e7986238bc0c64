"""Analytics tests that go through the API use its client fixture."""

from tests.api.conftest import api  # noqa: F401
