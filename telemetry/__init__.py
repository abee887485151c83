"""Traces and log context, for every process of the shop (web, worker, beat).

``telemetry.context`` is what the rest of the code calls: a span around an operation with the
fields an operator greps for (which saga, step, attempt, service), the trace context an outbox
row carries across processes, and the trace id a journal line records. It needs only the
OpenTelemetry API, which does nothing until ``telemetry.tracing`` installs the SDK, and it
does that only when the standard ``OTEL_*`` variables ask for an exporter. ``telemetry.logs``
puts the same fields on every log line, as text or as JSON (``LOG_FORMAT``).

It knows nothing of orders: the saga runtime and the event handlers bind a ``saga_id``, and
settings say what an operator calls it (``TELEMETRY_SAGA_ID``: ``order_id`` in this shop).
"""
