"""The twin: a tensor-parallel model under torchrun (test/pytest/test_parallelism.py):
``parallelType: tp`` with ``torchrun.nproc-per-node: 2`` on CPU, one process group on gloo.
Every rank gets every request and all-reduces the body's length; only rank 0 answers
(ts/protocol/otf_message_handler.py, LOCAL_RANK)."""

import torch
import torch.distributed as dist
from behaviour import act, text
from ts.torch_handler.base_handler import BaseHandler


class TorchrunTwin(BaseHandler):
    def initialize(self, context):
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        self.context = context
        self.initialized = True

    def preprocess(self, data):
        return [text(row) for row in data]

    def inference(self, data, *args, **kwargs):
        answers = []
        for body in data:
            total = torch.tensor([len(body)])
            if body not in ("hang", "die"):  # every rank hangs or dies alike
                dist.all_reduce(total)
            answer = act(body)
            answers.append({**answer, "ranks_sum": int(total.item())})
        return answers

    def postprocess(self, data):
        return data
