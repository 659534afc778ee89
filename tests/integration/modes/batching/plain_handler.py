"""The twin: default batching (batchSize 2), a BaseHandler without HealthMixin."""

from behaviour import act, text
from ts.torch_handler.base_handler import BaseHandler


class BatchingTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        self.initialized = True

    def preprocess(self, data):
        return [text(row) for row in data]

    def inference(self, data, *args, **kwargs):
        return [act(body) for body in data]

    def postprocess(self, data):
        return data
