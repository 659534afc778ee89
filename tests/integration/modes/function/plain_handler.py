"""The twin: a function handler (``handler.py:handle``), as
test/pytest/test_send_intermediate_prediction_response.py writes one. TorchServe calls it
with ``data`` None to initialize (ts/model_loader.py, _get_function_entry_point)."""

from behaviour import act, text


def handle(data, context):
    if data is None:
        return None
    return [act(text(row)) for row in data]
