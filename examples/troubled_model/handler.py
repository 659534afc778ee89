"""A model that misbehaves after it is READY, on request: for trying the truth after ready.

The request body says what happens:

- ``hang``: the request never returns (a deadlock, a stuck kernel);
- ``sleep:N``: the request takes N seconds, then succeeds (a legitimately slow model);
- ``fail``: this request raises ``ValueError``;
- ``poison``: this and every later request raise ``RuntimeError: CUDA error: device-side
  assert triggered``, as a corrupt CUDA context does (no GPU needed to see it);
- ``die``: the worker process is killed (SIGKILL, as the OOM killer does);
- anything else: ``{"ok": true}``.

TorchServe describes the worker as READY through every one of them.
"""

import os
import signal
import time

from ts.torch_handler.base_handler import BaseHandler

from ts_health_handler import HealthMixin

POISON = "CUDA error: device-side assert triggered"


class TroubledHandler(HealthMixin, BaseHandler):
    def initialize(self, context):
        self.poisoned = False
        self.initialized = True

    def handle(self, data, context):
        return [self.answer(self.text(row)) for row in data]

    @staticmethod
    def text(row):
        body = row.get("body") if isinstance(row, dict) else row
        if isinstance(body, (bytes, bytearray)):
            return body.decode("utf-8", "replace").strip()
        return str(body or "").strip()

    def answer(self, text):
        if self.poisoned:
            raise RuntimeError(POISON)
        if text == "hang":
            while True:
                time.sleep(3600)
        if text.startswith("sleep:"):
            time.sleep(float(text.split(":", 1)[1]))
        elif text == "fail":
            raise ValueError("bad input")
        elif text == "poison":
            self.poisoned = True
            raise RuntimeError(POISON)
        elif text == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return {"ok": True}
