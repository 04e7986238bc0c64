"""The API client and the local SMTP server of the API and notification tests, for the end-to-end scenarios."""

from tests.api.conftest import api  # noqa: F401
from tests.notify.conftest import receiver, smtp  # noqa: F401
