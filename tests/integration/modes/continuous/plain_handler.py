"""The twin: continuous batching (``continuousBatching: true``), as TorchServe's
test/pytest/test_data/streaming/stream_handler.py does it: a new request carries its body; a
request TorchServe keeps in the backend comes back in the next batch as an empty row, with
its id, until its stopping criterion (``context.stopping_criteria``, one per request, called
on each answer) says it is done. ``steps:N`` runs N handle() calls and answers in N chunks;
every other body is answered in one step (see behaviour.py)."""

from behaviour import act, text
from ts.torch_handler.base_handler import BaseHandler


def criterion(cache, request_id):
    """True when the request's last step was answered (it leaves the cache), False while
    steps remain; None for a request already gone (TorchServe's context keeps the last
    criteria for the next call, a describe included: ts/protocol/otf_message_handler.py)."""

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


class ContinuousTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        context.cache = {}
        self.initialized = True

    def preprocess(self, data):
        ids = list(self.context.request_ids.values())
        for request_id, row in zip(ids, data):
            if request_id not in self.context.cache:
                body = text(row)
                steps = int(body.split(":", 1)[1]) if body.startswith("steps:") else 1
                self.context.cache[request_id] = {"body": body, "steps": steps, "done": 0}
        return ids

    def inference(self, ids, *args, **kwargs):
        answers = []
        for request_id in ids:
            entry = self.context.cache[request_id]
            body = entry["body"]
            if body.startswith("steps:"):
                answers.append(f"{body} step {entry['done']}\n")
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
