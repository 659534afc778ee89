"""The twin: asynchronous worker communication (test/pytest/test_async_worker_comm.py):
``asyncCommunication: true`` and ``async def handle``; TorchServe's AsyncService runs every
request as a task of one event loop, so many are in flight at once."""

from behaviour import act_async, text
from ts.torch_handler.base_handler import BaseHandler


class AsyncTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        self.initialized = True

    async def handle(self, data, context):
        return [await act_async(text(row)) for row in data]
