from tests.admin.conftest import (  # noqa: F401 - shared admin fixtures
    make_account,
    other_school,
    school_admin,
    token_of,
)
