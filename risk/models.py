from django.db import models


class Screening(models.Model):
    """The risk service's record of one order's screening, and of the review when it is held.

    The screening provider's outcome is asked once per order; a held order waits for a person,
    whose decision is written here once (``decision`` is set only while it is empty).
    """

    class Outcome(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        REVIEW = "review"  # held: a person decides

    class Decision(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"  # nobody decided within RISK_REVIEW_HOURS

    order_id = models.UUIDField(unique=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reasons = models.CharField(max_length=200, blank=True)  # what the provider saw
    screened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, max_length=1000)

    class Meta:
        ordering = ["screened_at"]
        permissions = [("review_order", "Can approve or reject an order held for review")]
        indexes = [
            models.Index(
                fields=["screened_at"], condition=models.Q(outcome="review", decision=""), name="risk_awaiting_review"
            )
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.decision or self.outcome}"

    @property
    def awaiting_review(self) -> bool:
        return self.outcome == self.Outcome.REVIEW and not self.decision
