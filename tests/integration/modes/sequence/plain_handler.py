"""The twin: sequence batching (``sequenceBatching: true``), a stateful session per
sequence id as examples/stateful/sequence_batching/stateful_handler.py keeps it. TorchServe
gives a request without ``ts_request_sequence_id`` a new id (and ``ts_request_sequence_start``);
the answer carries the id back as a header, and the client sends it with the session's next
requests. A number adds to the session's sum; other bodies as in behaviour.py."""

from behaviour import act, text
from ts.torch_handler.base_handler import BaseHandler


class SequenceTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        self.sums = {}
        self.initialized = True

    def preprocess(self, data):
        rows = []
        for index, row in enumerate(data):
            sequence = self.context.get_sequence_id(index)
            self.context.set_response_header(index, self.context.header_key_sequence_id, sequence)
            if self.context.get_request_header(index, self.context.header_key_sequence_start):
                self.sums[sequence] = 0
            rows.append((sequence, text(row)))
        return rows

    def inference(self, rows, *args, **kwargs):
        answers = []
        for sequence, body in rows:
            if body.lstrip("-").isdigit():
                self.sums[sequence] = self.sums.get(sequence, 0) + int(body)
                answers.append({"sum": self.sums[sequence]})
            else:
                answers.append(act(body))
        return answers

    def postprocess(self, data):
        return data
