"""Event names that more than one service relies on: the shop's shared event contract.

Each service names its own events where it announces them; what lives here is the one list
every participant subscribes to as a whole, so that a new failure event reaches them all.
"""

# A step failed for good, or the order turned back for another reason (a cancel, an expiry,
# staff): every service that may have done something undoes its own part.
TURNING_BACK = ("stock.refused", "payment.declined", "payment.failed", "shipment.rejected", "order.compensating")
