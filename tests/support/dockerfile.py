"""Read a Dockerfile's instructions: enough to check ``examples/kubernetes/Dockerfile`` without
a container runtime (``tests/integration/test_image.py``, the simulated kubelet)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    text: str

    @property
    def exec_form(self) -> list[str]:
        """``["a", "b"]`` of ENTRYPOINT/CMD (the exec form), as a list."""
        value = json.loads(self.text)
        assert isinstance(value, list), self.text
        assert all(isinstance(v, str) for v in value), self.text
        return value

    def copy_parts(self) -> tuple[dict[str, str], list[str], str]:
        """``(flags, sources, destination)`` of a COPY."""
        words = shlex.split(self.text)
        flags = dict(w[2:].split("=", 1) for w in words if w.startswith("--"))
        rest = [w for w in words if not w.startswith("--")]
        return flags, rest[:-1], rest[-1]


def instructions(path: Path) -> list[Instruction]:
    """Every instruction, continuation lines joined, comments left out."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, text = line.partition(" ")
        found.append(Instruction(keyword.upper(), text.strip()))
    return found


def one(items: list[Instruction], keyword: str) -> Instruction:
    (found,) = [i for i in items if i.keyword == keyword]
    return found
