"""What every remote participant (payment provider, carrier) may answer besides yes and no."""


class RequestInFlight(Exception):
    """A request with this idempotency key is still being processed by the remote service.

    Stripe answers ``idempotency_key_in_use`` (HTTP 409) to it. It means "unknown yet": the
    first request may still succeed, so the caller neither fails nor assumes nothing happened;
    it asks again later.
    """
