"""Keys in the terminal's live view: ``+``/``-`` change the rate by 10%, ``p`` pauses and
resumes, ``q`` stops with the normal drain. On only when stdin is a terminal; it is put in
cbreak mode (keys arrive one by one, unechoed; Ctrl-C still signals) and restored after."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import termios
import tty
from collections.abc import Iterator
from typing import TextIO

from producer.control.state import ControlError, RunControl

HINT = "keys: + / - rate 10%   p pause/resume   q stop (drain)"
STEP = 0.10


async def press(control: RunControl, key: str) -> None:
    """What one key does (unknown keys do nothing)."""
    rate = control.target.rate
    try:
        if key == "+":
            await control.patch(rate * (1 + STEP), None, "keys")
        elif key == "-":
            await control.patch(rate * (1 - STEP), None, "keys")
        elif key == "p":
            await control.patch(None, not control.target.paused, "keys")
        elif key == "q":
            await control.stop("keys")
    except ControlError as exc:
        control.log(f"control: {exc}")


@contextlib.contextmanager
def terminal_keys(control: RunControl, stdin: TextIO = sys.stdin) -> Iterator[bool]:
    """Read keys from ``stdin`` for the block; yields whether it could (a terminal)."""
    if not stdin.isatty():
        yield False
        return
    fd = stdin.fileno()
    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(fd)
    tasks: set[asyncio.Task[None]] = set()

    def readable() -> None:
        for key in stdin.read(1):
            task = loop.create_task(press(control, key))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield True
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
