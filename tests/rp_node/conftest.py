from __future__ import annotations

import pytest

from tests.rp_node.live import start_live_provider


@pytest.fixture(scope="module")
def live_provider(app, settings_overrides):
    """The provider over real HTTP on a free port; shares the test database with ``app``."""
    provider = start_live_provider(settings_overrides)
    yield provider
    provider.stop()
