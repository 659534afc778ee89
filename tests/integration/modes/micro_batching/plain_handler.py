"""The twin: TorchServe's micro-batching (examples/micro_batching/micro_batching_handler.py):
``self.handle = MicroBatching(self)`` in ``__init__``, the micro-batch size set in
``initialize()``; batches of up to 4 requests run as micro-batches of 2 through threads that
call preprocess, inference and postprocess."""

from behaviour import act, text
from ts.handler_utils.micro_batching import MicroBatching
from ts.torch_handler.base_handler import BaseHandler


class MicroBatchingTwin(BaseHandler):
    def __init__(self):
        super().__init__()
        self.handle = MicroBatching(self)

    def initialize(self, context):
        self.context = context
        size = context.model_yaml_config.get("micro_batching", {}).get("micro_batch_size", 1)
        self.handle.micro_batch_size = size
        self.initialized = True

    def preprocess(self, data):
        return [text(row) for row in data]

    def inference(self, data, *args, **kwargs):
        return [act(body) for body in data]

    def postprocess(self, data):
        return data
