"""A hop for a queue that the worker writing it consumes is run by that worker, in process
(``outbox.nearby``): no broker round trip, and the outbox row still its durable record."""

import re
from decimal import Decimal

import pytest
import redis

from orders.models import Status
from orders.plan import ORDER_SAGA
from outbox import nearby
from outbox.models import OutboxMessage
from sagas.models import SagaStep
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import assert_invariants, wait_for_terminal, wait_until, wait_until_settled

pytestmark = pytest.mark.saga

RECEIVED = re.compile(r"Task (\S+)\[[0-9a-f-]+\] received")


@pytest.mark.parametrize("in_process", [True, False], ids=["in process", "through the broker"])
def test_a_worker_serving_every_queue_takes_one_order_from_the_broker_once(
    special_worker, api, coordination, in_process
):
    # given a worker consuming every queue (the default layout), with hops in process or not
    worker = special_worker(env={"OUTBOX_LOCAL_HOPS": str(in_process).lower()})
    mug = ProductFactory(price=Decimal("12.50"), stock=5)

    # when an order of one line goes through
    order_id = post_order(api, order_body(mug))
    assert wait_for_terminal([order_id])[order_id].status == Status.COMPLETED
    wait_until_settled()

    # then every hop is recorded and sent, and only what was not run in process crossed the broker
    rows = list(OutboxMessage.objects.filter(shard=order_id).order_by("id"))
    assert rows and all(row.sent_at is not None for row in rows)
    assert len(RECEIVED.findall(worker.log_path.read_text())) == len([row for row in rows if not row.in_process])
    # in process, each step after the first ran in the process that ended the step before it,
    # and so did everything else the worker wrote (an event's other subscribers, emails and
    # bookkeeping): only what the web wrote, which never runs a task, crossed the broker
    ran_here = {
        row.message["args"][0] if row.name.endswith(".handle_event") else row.name for row in rows if row.in_process
    }
    later_steps = {step.task for step in ORDER_SAGA.steps[1:]}
    assert later_steps <= ran_here if in_process else not ran_here
    first_step = SagaStep.objects.filter(saga_id=order_id).order_by("started_at").first()
    assert first_step is not None and first_step.started_at is not None
    written_by_the_web = [row for row in rows if row.created_at < first_step.started_at]
    crossed = [row for row in rows if not row.in_process]
    assert crossed == (written_by_the_web if in_process else rows)
    # and the rows run in process were marked sent together, as the run of them ended: one
    # statement (and one commit) for the whole order instead of one per hop
    assert len({row.sent_at for row in rows if row.in_process}) == (1 if in_process else 0)


def test_a_sagas_next_hops_run_before_the_rest_of_what_they_wrote(monkeypatch):
    # given rows run in process that, as each runs, commit rows of their own: the saga's next
    # hop, and the rest (an event's other subscribers: the owner's bookkeeping, the emails)
    ran: list[int] = []
    writes = {1: [(2, True), (3, False), (4, False)], 2: [(5, True), (6, False)]}

    def run(pk: int, *_: object) -> None:
        ran.append(pk)
        for written, next_hop in writes.get(pk, []):  # what the row's task commits, as it ends
            nearby.run_after_task(written, {"task": "t"}, {}, {}, next_hop=next_hop)

    monkeypatch.setattr(nearby, "_run", run)
    monkeypatch.setattr(nearby, "_mark_ran", lambda: None)

    # when the first is committed outside any task
    nearby.run_after_task(1, {"task": "t"}, {}, {}, next_hop=True)

    # then the saga's steps run one after the other, and what else was written after them, in
    # the order it was committed (first come, first served, would have been 1, 2, 3, 4, 5, 6)
    assert ran == [1, 2, 5, 3, 4, 6]


@pytest.mark.parametrize("taken", [True, False], ids=["taken together", "declined"])
def test_a_tasks_messages_waiting_together_are_handed_to_its_runner_at_once(monkeypatch, taken: bool):
    # given a task whose runner takes several of its messages at once (the orders service's moves)
    ran: list[int] = []
    handed: list[list[int]] = []
    marked: list[int] = []

    def run(pk: int, *_: object) -> None:
        ran.append(pk)
        if pk == 1:  # the saga's last step, which commits what waits for the bookkeeping
            for written, task in [(2, "moves"), (3, "emails"), (4, "moves"), (5, "moves")]:
                nearby.run_after_task(written, {"task": task, "pk": written}, {}, {}, next_hop=False)

    def runner(messages: list[dict[str, object]]) -> bool:
        handed.append([int(str(message["pk"])) for message in messages])
        return taken

    monkeypatch.setattr(nearby, "_run", run)
    monkeypatch.setattr(nearby, "_ran", marked)
    monkeypatch.setattr(nearby, "_mark_ran", lambda: None)
    monkeypatch.setitem(nearby._together, "moves", runner)

    # when the step's row runs
    nearby.run_after_task(1, {"task": "step"}, {}, {}, next_hop=True)

    # then the moves went to the runner at once, in order; taken, they ran nowhere else and are
    # marked run; declined, each ran on its own, in order, and so did the task between them
    assert handed == [[2, 4, 5]]
    assert ran == ([1, 3] if taken else [1, 2, 4, 5, 3])
    assert marked == ([2, 4, 5] if taken else [])


def test_a_worker_killed_between_a_commit_and_its_hop_leaves_the_hop_to_the_relay(
    special_worker, api, coordination, tmp_path
):
    # given a worker that dies right after committing the hop to the payment, before running it
    mark = tmp_path / "died"
    dying = special_worker(
        app="tests.chaos.apps.dies_before_a_hop",
        env={"CHAOS_MARK": str(mark), "OUTBOX_LOCAL_HOPS": "true", "OUTBOX_LOCAL_LEASE_SECONDS": "2"},
    )
    mug = ProductFactory(price=Decimal("12.50"), stock=5)
    order_id = post_order(api, order_body(mug))
    wait_until(lambda: mark.exists() and dying.process is not None and dying.process.poll() is not None, 60, "a death")

    # then the hop is an unsent row, held back for its lease
    hop = OutboxMessage.objects.get(pk=int(mark.read_text()))
    assert (hop.shard, hop.in_process, hop.sent_at) == (order_id, True, None)

    # when a worker starts again, its relay sends the hop once the lease is over: the order
    # completes, charged once
    special_worker(env={"OUTBOX_LOCAL_HOPS": "true"})
    order = wait_for_terminal([order_id])[order_id]
    assert order.status == Status.COMPLETED
    hop.refresh_from_db()
    assert hop.sent_at is not None
    assert_invariants([order], {mug.sku: 5})


def test_a_step_retried_in_process_is_retried_through_its_queue_even_when_the_broker_lost_its_bindings(
    special_worker, api, coordination, settings
):
    # given a worker running hops in process, which has sent a shipment's retry before (its
    # producer remembers having declared the queue), and a broker that then lost its exchanges'
    # bindings, as a Redis restarted without persistence does
    special_worker(env={"OUTBOX_LOCAL_HOPS": "true"})
    mug = ProductFactory(price=Decimal("12.50"), stock=5)
    first = post_order(api, order_body(mug, postal_code="99999"))
    assert wait_for_terminal([first])[first].status == Status.COMPLETED
    on_redis = settings.CELERY_BROKER_URL.startswith("redis")
    if on_redis:
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(*broker.keys("_kombu.binding*"))

    # when the carrier fails twice (99999) on a shipment run in process, right after the charge
    order_id = post_order(api, order_body(mug, postal_code="99999"))

    # then its retries reach the shipping queue (addressed by the queue's name, as the broker
    # delivers every message: no binding needed), none is dropped, and the order completes
    order = wait_for_terminal([order_id], timeout=30)[order_id]
    assert order.status == Status.COMPLETED
    if on_redis:
        assert broker.llen("ae.undeliver") == 0, "a message was dropped for want of a binding"
    retried = [
        row.message["options"]
        for row in OutboxMessage.objects.filter(shard=order_id, name="shipping.create_shipment")
        if row.message["options"].get("retries")
    ]
    if coordination == "orchestration":  # choreography's retries are its own deliveries, not Celery's
        assert retried and all("exchange" not in options for options in retried), retried
    assert_invariants(list(wait_for_terminal([first, order_id]).values()), {mug.sku: 5})
