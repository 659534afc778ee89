"""The twin: answers streamed with send_intermediate_predict_response (batchSize 1).

``stream:N`` answers in N chunks (N-1 intermediate ones, then the final answer);
``partial:hang`` and ``partial:fail`` send one chunk, then hang or fail.
"""

from behaviour import act, text
from ts.handler_utils.utils import send_intermediate_predict_response
from ts.torch_handler.base_handler import BaseHandler


class StreamingTwin(BaseHandler):
    def initialize(self, context):
        self.context = context
        self.initialized = True

    def preprocess(self, data):
        return [text(row) for row in data]

    def inference(self, data, *args, **kwargs):
        answers = []
        for body in data:
            if body.startswith("stream:"):
                chunks = int(body.split(":", 1)[1])
                for index in range(chunks - 1):
                    self.chunk(f"{body} chunk {index}\n")
                answers.append(f"{body} chunk {chunks - 1} (last)\n")
            elif body.startswith("partial:"):
                self.chunk(f"{body} chunk 0\n")
                answers.append(act(body.split(":", 1)[1]))
            else:
                answers.append(act(body))
        return answers

    def chunk(self, piece):
        send_intermediate_predict_response(
            [piece], self.context.request_ids, "Intermediate Prediction success", 200, self.context
        )

    def postprocess(self, data):
        return data
