"""The twin: sequence + continuous batching (examples/stateful/sequence_continuous_batching):
sessions as in ../sequence (a number adds to the session's sum), requests spanning several
handle() calls as in ../continuous (``steps:N`` answers the session's sum in N chunks), and
``end`` closes the session (the ``ts_request_sequence_end`` answer header)."""

from behaviour import act, text
from ts.torch_handler.base_handler import BaseHandler


def criterion(cache, request_id):
    """As ../continuous: True once the request's last step is answered, None once gone."""

    def stop(_answer):
        entry = cache.get(request_id)
        if entry is None:
            return None
        if entry["done"] >= entry["steps"]:
            del cache[request_id]
            # A one-step answer is no stream: None leaves ts_stream_next unset. (True would
            # set it "false", which TorchServe 0.12 sends as the end of a stream that never
            # began: the client gets no answer.)
            return True if entry["steps"] > 1 else None
        return False

    return stop


class SequenceContinuousTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        context.cache = {}
        self.sums = {}
        self.initialized = True

    def preprocess(self, data):
        ids = list(self.context.request_ids.values())
        for index, (request_id, row) in enumerate(zip(ids, data)):
            sequence = self.context.get_sequence_id(index)
            self.context.set_response_header(index, self.context.header_key_sequence_id, sequence)
            if request_id in self.context.cache:
                continue
            if self.context.get_request_header(index, self.context.header_key_sequence_start):
                self.sums[sequence] = 0
            body = text(row)
            steps = int(body.split(":", 1)[1]) if body.startswith("steps:") else 1
            self.context.cache[request_id] = {
                "body": body,
                "steps": steps,
                "done": 0,
                "sequence": sequence,
            }
        return ids

    def inference(self, ids, *args, **kwargs):
        answers = []
        for index, request_id in enumerate(ids):
            entry = self.context.cache[request_id]
            body, sequence = entry["body"], entry["sequence"]
            if body.lstrip("-").isdigit():
                self.sums[sequence] = self.sums.get(sequence, 0) + int(body)
                answers.append({"sum": self.sums[sequence]})
            elif body.startswith("steps:"):
                answers.append(f"sum {self.sums.get(sequence, 0)} step {entry['done']}\n")
            elif body == "end":
                self.sums.pop(sequence, None)
                self.context.set_response_header(
                    index, self.context.header_key_sequence_end, sequence
                )
                answers.append({"ended": True})
            else:
                answers.append(act(body))
            entry["done"] += 1
        return answers

    def postprocess(self, data):
        cache = self.context.cache
        self.context.stopping_criteria = [
            criterion(cache, request_id) for request_id in self.context.request_ids.values()
        ]
        return data
