from tests.web.conftest import place_order  # noqa: F401  (same fixture for the admin tests)
