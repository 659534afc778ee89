"""HealthMixin in every shape TorchServe 0.12 calls a handler: ``async def handle`` (many calls
in flight at once), a ``handle`` set on the instance (``MicroBatching``), continuous batching
(one request over several calls, ended by its stopping criterion) and the serving mode read
from ``model-config.yml``."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

pytest.importorskip(
    "ts", reason="needs torchserve (the ts package): pip install torchserve==0.12.0"
)

from tests.unit.handler.mixin_model import Make, Model
from ts_health_handler import HealthMixin, ServingMode
from ts_health_handler.handler._context import serving_mode
from ts_health_handler.testing import describe, infer, set_requests

pytestmark = pytest.mark.usefixtures("no_real_sleep")


# -- async def handle ------------------------------------------------------------------------


class AsyncModel(HealthMixin):
    """``async def handle`` as TorchServe's vLLM handler has it: a body ``wait`` waits for
    :attr:`release`, ``fail`` raises."""

    def initialize(self, context: Any) -> None:
        # Made in the event loop (Python 3.9 binds an Event to the loop of its creation).
        self.release: asyncio.Event | None = None
        self.inside: list[Any] = []

    async def handle(self, data: Any, context: Any) -> Any:
        body = data[0].get("body")
        if body == "wait":
            self.inside.append(self._ts_health.requests.in_flight())
            if self.release is None:
                self.release = asyncio.Event()
            await self.release.wait()
        if body == "fail":
            raise ValueError("bad prompt")
        return [{"echo": item.get("body")} for item in data]


def test_async_handle_stays_a_coroutine_function_and_describe_is_awaitable(make: Make) -> None:
    import inspect

    handler, context = make(AsyncModel, name="llm")
    assert inspect.iscoroutinefunction(type(handler).handle)
    handler.initialize(context)
    set_requests(context, [{"describe": "True"}])
    answer = handler.handle([{}], context)
    assert inspect.isawaitable(answer)  # ts/async_service.py awaits the entry point
    [document] = asyncio.run(_wait(answer))
    assert document["status"] == "ready"
    assert describe(handler, context)["requests"]["total"] == 0


async def _wait(awaitable: Any) -> Any:
    return await awaitable


def test_async_calls_in_flight_at_once_are_each_counted(ts_context: Any, fake_time: Any) -> None:
    handler = fake_time(AsyncModel())
    context = ts_context("llm", model_yaml_config={"asyncCommunication": True})
    handler.initialize(context)

    async def run() -> list[Any]:
        # Each call its own context, as TorchServe's async service deep-copies it per batch.
        waiting = [
            asyncio.ensure_future(handler.handle([{"body": "wait"}], copy.copy(context)))
            for _ in range(2)
        ]
        for _ in range(10):
            await asyncio.sleep(0)
        seen = handler._ts_health.requests.in_flight().requests
        quick = await handler.handle([{"body": "now"}], context)
        handler.release.set()  # made by the first waiting call
        return [seen, quick, *(await asyncio.gather(*waiting))]

    seen, quick, *waited = asyncio.run(run())
    assert seen == 2  # both waiting calls, at once
    assert quick == [{"echo": "now"}]
    assert waited == [[{"echo": "wait"}], [{"echo": "wait"}]]
    assert [inside.requests for inside in handler.inside] == [1, 2]
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"], requests["in_flight"]) == (3, 0, 0)
    assert describe(handler, context)["worker"]["mode"] == "async"


def test_async_failures_in_a_row_make_the_streak(ts_context: Any, fake_time: Any) -> None:
    handler = fake_time(AsyncModel())
    context = ts_context("llm", model_yaml_config={"asyncCommunication": True})
    handler.initialize(context)
    for _ in range(3):
        with pytest.raises(ValueError, match="bad prompt"):
            infer(handler, context, [{"body": "fail"}])
    handler._ts_health._start_serving()  # inside TorchServe this follows initialize()
    for _ in range(2):
        with pytest.raises(ValueError, match="bad prompt"):
            infer(handler, context, [{"body": "fail"}])
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"], requests["consecutive_failures"]) == (5, 5, 5)
    assert requests["last_error"]["type"] == "ValueError"
    infer(handler, context, [{"body": "ok"}])
    assert describe(handler, context)["requests"]["consecutive_failures"] == 0


def test_overlapping_failures_are_in_a_row_while_nothing_succeeds(
    ts_context: Any, fake_time: Any
) -> None:
    """Two calls in flight that both fail: the streak is 2 (it counts calls that returned,
    not requests that started)."""
    handler = fake_time(AsyncModel())
    context = ts_context("llm", model_yaml_config={"asyncCommunication": True})
    handler.initialize(context)

    async def run() -> None:
        async def failing(after: asyncio.Event) -> None:
            await after.wait()
            raise ValueError("bad")

        first, second = asyncio.Event(), asyncio.Event()
        calls = [
            asyncio.ensure_future(_served(handler, copy.copy(context), failing, first)),
            asyncio.ensure_future(_served(handler, copy.copy(context), failing, second)),
        ]
        await asyncio.sleep(0)
        first.set()
        second.set()
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)

    asyncio.run(run())
    assert handler._ts_health._serving.consecutive_failures == 2


async def _served(handler: Any, context: Any, call: Any, event: asyncio.Event) -> Any:
    from ts_health_handler.handler._mixin import tracked_async

    async def work(handler: Any, data: Any, context: Any) -> Any:
        return await call(event)

    return await tracked_async(work)(handler, [{"body": "x"}], context)


def test_a_super_call_of_an_async_handle_is_counted_once(ts_context: Any, fake_time: Any) -> None:
    class Child(AsyncModel):
        async def handle(self, data: Any, context: Any) -> Any:
            return await super().handle(data, context)

    handler = fake_time(Child())
    context = ts_context("llm", model_yaml_config={"asyncCommunication": True})
    handler.initialize(context)
    assert infer(handler, context, [{"body": "x"}]) == [{"echo": "x"}]
    assert describe(handler, context)["requests"]["total"] == 1


# -- a handle set on the instance (micro-batching) -------------------------------------------


class Batching:
    """Stands for ``ts.handler_utils.micro_batching.MicroBatching``: a callable object with
    settings of its own, set as ``self.handle`` in ``__init__``."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.micro_batch_size = 1

    def __call__(self, data: Any, context: Any) -> Any:
        if any("raise" in item for item in data):
            raise RuntimeError("micro-batch failed")
        return [{"size": self.micro_batch_size} for _ in data]


class MicroModel(Model):
    def __init__(self) -> None:  # TorchServe's example does not call super().__init__()
        self.handle = Batching(self)

    def initialize(self, context: Any) -> str:
        self.handle.micro_batch_size = 4  # reaches the Batching object
        return super().initialize(context)


def test_an_instance_handle_is_tracked_and_keeps_its_settings(make: Make) -> None:
    handler, context = make(MicroModel)
    handler.initialize(context)
    assert handler.handle.micro_batch_size == 4
    assert infer(handler, context, [{}, {}, {}]) == [{"size": 4}] * 3
    with pytest.raises(RuntimeError, match="micro-batch failed"):
        infer(handler, context, [{"raise": True}])
    document = describe(handler, context)
    assert document["status"] == "ready"  # answered by us, not by the Batching object
    assert (document["requests"]["total"], document["requests"]["failed"]) == (4, 1)


def test_a_handle_set_in_initialize_is_tracked_too(make: Make) -> None:
    class Late(Model):
        def initialize(self, context: Any) -> str:
            self.handle = Batching(self)
            return super().initialize(context)

    handler, context = make(Late)
    handler.initialize(context)
    assert infer(handler, context, [{}]) == [{"size": 1}]
    assert describe(handler, context)["requests"]["total"] == 1


def test_the_real_micro_batching_counts_every_request(make: Make) -> None:
    pytest.importorskip("torch", reason="BaseHandler imports torch (2.13.0 exists for 3.11 only)")
    from ts.handler_utils.micro_batching import MicroBatching
    from ts.torch_handler.base_handler import BaseHandler

    class Real(Model, BaseHandler):
        def __init__(self) -> None:
            self.handle = MicroBatching(self, micro_batch_size=2)

        def preprocess(self, data: Any) -> Any:
            return data

        def inference(self, data: Any) -> Any:
            return data

        def postprocess(self, data: Any) -> Any:
            return [1 for _ in data]

    handler, context = make(Real)
    try:
        handler.initialize(context)
        assert infer(handler, context, [{}, {}, {}]) == [1, 1, 1]
        assert describe(handler, context)["requests"]["total"] == 3
    finally:
        handler.handle.shutdown()


# -- continuous batching ---------------------------------------------------------------------


class Stepping(Model):
    """A generator in the shape of TorchServe's continuous-batching handlers: each call is a
    step for every request in the batch; a request stops after ``steps`` calls."""

    def initialize(self, context: Any) -> str:
        self.left: dict[str, int] = {}
        return super().initialize(context)

    def handle(self, data: Any, context: Any) -> Any:
        if any("raise" in item for item in data):
            raise RuntimeError("step failed")
        ids = [context.request_ids[i] for i in sorted(context.request_ids)]
        for request_id, item in zip(ids, data):
            self.left.setdefault(request_id, item.get("steps", 1))
        context.stopping_criteria = [self._criterion(i) for i in ids]
        return [{"token": self.left[i]} for i in ids]

    def _criterion(self, request_id: str) -> Any:
        def stop(result: Any) -> bool:
            self.left[request_id] -= 1
            return self.left[request_id] == 0

        return stop


def _step(handler: Any, context: Any, ids: list[str], steps: int = 2) -> None:
    """One call, then TorchServe's own use of the criteria (create_predict_response)."""
    result = infer(handler, context, [{"steps": steps} for _ in ids], request_ids=ids)
    for index, criterion in enumerate(context.stopping_criteria):
        criterion(result[index])


def test_continuous_batching_counts_each_request_once_until_it_stops(
    ts_context: Any, fake_time: Any
) -> None:
    handler = fake_time(Stepping())
    context = ts_context("gen", model_yaml_config={"continuousBatching": True})
    handler.initialize(context)
    _step(handler, context, ["a"], steps=3)
    _step(handler, context, ["a", "b"], steps=2)
    spans = handler._ts_health.requests.spans
    assert sorted(spans.open) == ["a", "b"]
    _step(handler, context, ["a", "b"])  # a's third step: a stops; b's second: b stops
    assert spans.open == {}
    assert handler.left == {"a": 0, "b": 0}  # each criterion ran once per step, no more
    document = describe(handler, context)
    assert (document["requests"]["total"], document["requests"]["open"]) == (2, 0)
    assert document["worker"]["mode"] == "continuous"


def test_continuous_batching_a_failed_step_ends_its_requests(
    ts_context: Any, fake_time: Any
) -> None:
    handler = fake_time(Stepping())
    context = ts_context("gen", model_yaml_config={"continuousBatching": True})
    handler.initialize(context)
    _step(handler, context, ["a"], steps=5)
    with pytest.raises(RuntimeError, match="step failed"):
        infer(handler, context, [{"raise": True}, {}], request_ids=["a", "c"])
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"], requests["open"]) == (2, 2, 0)


def test_continuous_batching_without_criteria_ends_every_request(
    ts_context: Any, fake_time: Any
) -> None:
    handler = fake_time(Model())
    context = ts_context("gen", model_yaml_config={"continuousBatching": True})
    handler.initialize(context)
    infer(handler, context, [{}, {}], request_ids=["a", "b"])
    infer(handler, context, [{}], request_ids=["a"])  # a new request that reuses an old id
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["open"]) == (3, 0)


def test_a_criterion_kept_on_the_context_is_wrapped_once(ts_context: Any, fake_time: Any) -> None:
    class Kept(Stepping):
        def handle(self, data: Any, context: Any) -> Any:
            if context.stopping_criteria is None:  # set once, as ts keeps it between calls
                return super().handle(data, context)
            return [{"token": 0} for _ in data]

    handler = fake_time(Kept())
    context = ts_context("gen", model_yaml_config={"continuousBatching": True})
    handler.initialize(context)
    _step(handler, context, ["a"], steps=3)
    _step(handler, context, ["a"])
    [criterion] = context.stopping_criteria
    assert not hasattr(criterion.wrapped, "wrapped")  # not a wrapper of our wrapper
    assert handler.left == {"a": 1}


# -- the serving mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "mode"),
    [
        (None, ServingMode.DEFAULT),
        ({"batchSize": 4}, ServingMode.DEFAULT),
        ({"asyncCommunication": True}, ServingMode.ASYNC),
        ({"continuousBatching": "true"}, ServingMode.CONTINUOUS),
        ({"sequenceBatching": True}, ServingMode.SEQUENCE),
        ({"sequenceBatching": True, "continuousBatching": True}, ServingMode.SEQUENCE_CONTINUOUS),
        ({"asyncCommunication": False}, ServingMode.DEFAULT),
        ({"continuousBatching": "yes"}, ServingMode.DEFAULT),
    ],
)
def test_the_serving_mode_comes_from_model_config(config: Any, mode: ServingMode) -> None:
    assert serving_mode(config) is mode


def test_sequence_modes_are_the_ones_torchserve_routes_no_describe_to() -> None:
    assert [m.value for m in ServingMode if not m.routes_describe] == [
        "sequence",
        "sequence_continuous",
    ]
    assert [m.value for m in ServingMode if m.spans_calls] == ["continuous", "sequence_continuous"]


def test_an_async_call_collected_while_it_waits_is_a_failed_request(
    ts_context: Any, fake_time: Any
) -> None:
    """TorchServe 0.12 keeps no reference to a request's task: one that waits on what nothing
    else references is collected (closed with GeneratorExit) and never answered."""

    class Pending:
        def __await__(self) -> Any:
            yield

    class Waiting(AsyncModel):
        async def handle(self, data: Any, context: Any) -> Any:
            await Pending()
            return data

    handler = fake_time(Waiting())
    context = ts_context("llm", model_yaml_config={"asyncCommunication": True})
    handler.initialize(context)
    set_requests(context, [{}])
    call = handler.handle([{"body": "wait"}], context)
    call.send(None)  # now waiting
    assert handler._ts_health.requests.in_flight().requests == 1
    call.close()  # what the garbage collector does to a pending task's coroutine
    requests = describe(handler, context)["requests"]
    assert (requests["total"], requests["failed"], requests["in_flight"]) == (1, 1, 0)
