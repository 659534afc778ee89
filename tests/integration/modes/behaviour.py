"""What every serving-mode test model does with a request body (packed beside each handler).

The body says what happens, as in ``examples/troubled_model``:

- ``hang``: the request never returns;
- ``sleep:N``: it takes N seconds, then succeeds;
- ``fail``: it raises ``ValueError: bad input``;
- ``die``: the worker process is killed (SIGKILL, as the OOM killer does);
- anything else: the answer ``{"echo": <body>}``.

Functions only: a handler module must define exactly one class of its own, and the twin
(``plain_handler.py``) and ours (``handler.py``) must behave byte for byte alike.
"""

import asyncio
import os
import signal
import threading
import time


def text(row):
    """The request body of one batch row as text (``{}`` rows, as continuous batching sends
    for a request cached in the backend, are ``""``)."""
    body = row.get("data") or row.get("body") if isinstance(row, dict) else row
    if isinstance(body, (bytes, bytearray)):
        return body.decode("utf-8", "replace").strip()
    return str(body or "").strip()


def act(body):
    """Do what ``body`` asks (blocking) and return its answer."""
    if body == "hang":
        threading.Event().wait()
    if body.startswith("sleep:"):
        time.sleep(float(body.split(":", 1)[1]))
    elif body == "fail":
        raise ValueError("bad input")
    elif body == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    return {"echo": body}


#: The events hung requests wait on (never set).
HUNG = []


async def act_async(body):
    """:func:`act` for ``async def handle``: waiting never blocks the event loop, so other
    requests keep being served beside a hung or sleeping one."""
    if body == "hang":
        # Held here, as an engine holds the future of a request it never finishes:
        # TorchServe 0.12 keeps no reference to a request's task (run_coroutine_threadsafe's
        # future is dropped), so a task waiting on what nothing else references is collected
        # ("Task was destroyed but it is pending!") and its client waits for ever.
        hung = asyncio.Event()
        HUNG.append(hung)
        await hung.wait()
    if body.startswith("sleep:"):
        await asyncio.sleep(float(body.split(":", 1)[1]))
        return {"echo": body}
    return act(body)
