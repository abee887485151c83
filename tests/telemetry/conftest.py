from tests.web.conftest import place_order  # noqa: F401  (the checkout's service, without a saga)
