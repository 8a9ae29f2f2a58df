from tests.admin.conftest import *  # noqa: F401,F403 - the admin fixtures
from tests.card.conftest import *  # noqa: F401,F403 - the card fixtures
