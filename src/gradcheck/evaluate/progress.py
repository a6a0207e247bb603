"""A progress bar for long checks: evaluations done, out of how many, and an ETA.

Shown only when stderr is a terminal and the check looks like it will take more than about a
second (judged from the first evaluations); silent otherwise, and always with
``progress=False``. It uses ``rich`` when installed, else ``tqdm``, else one plain line
rewritten with ``\\r``. Evaluators call :meth:`Progress.advance` once per evaluation, so the
cost when the bar is off is one attribute test (the evaluator's ``progress`` is ``None``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from gradcheck.optional import available

#: Show the bar only for checks expected to last longer than this (seconds).
MIN_SECONDS = 1.0
#: Decide after this much time has passed (seconds), from the rate so far.
DECIDE_AFTER = 0.25
#: Refresh the display at most this often (seconds).
REFRESH = 0.1


def wanted(progress: bool, stream: TextIO | None = None) -> bool:
    """Whether a bar may be shown: ``progress`` is true and the stream is a terminal."""
    stream = sys.stderr if stream is None else stream
    if not progress:
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


class Progress:
    """Counts evaluations and draws a bar once the check is predicted to be long.

    Parameters
    ----------
    total : evaluations expected (may grow with :meth:`add_total`, e.g. while localising).
    stream : where to draw (default ``sys.stderr``).
    backend : ``"rich"``, ``"tqdm"``, ``"plain"`` or ``None`` (the first available).
    min_seconds : draw only when the predicted duration ``elapsed · total / done`` exceeds it.
    """

    def __init__(self, total: int, stream: TextIO | None = None, backend: str | None = None,
                 min_seconds: float = MIN_SECONDS, label: str = "gradcheck") -> None:
        self.total = max(int(total), 0)
        self.done = 0
        self.stream = sys.stderr if stream is None else stream
        self.backend = backend or _available_backend()
        self.min_seconds = min_seconds
        self.label = label
        self.start = time.perf_counter()
        self._next = self.start + min(DECIDE_AFTER, min_seconds)
        self._bar: Any = None
        self.shown = False
        self.entries_done = 0       # entries of finished tensors (see begin / end)
        self._tensor = (0, 1, 0)    # current tensor: entries, evaluations per entry, done at start

    def add_total(self, n: int) -> None:
        """Expect ``n`` more evaluations."""
        self.total += int(n)

    def begin(self, entries: int, per_entry: int) -> None:
        """A tensor of ``entries`` entries starts, ``per_entry`` evaluations each at first."""
        self._tensor = (int(entries), max(int(per_entry), 1), self.done)

    def end(self) -> None:
        """The current tensor is finished, second look included."""
        entries, per, _ = self._tensor
        self.entries_done += entries
        self._tensor = (0, per, self.done)

    def predicted_total(self) -> int:
        """Evaluations the whole check should take.

        Without :meth:`begin`/:meth:`end`, ``total``. With them, the evaluations done so far
        divided by the fraction of entries finished, ``f = (entries of finished tensors +
        entries of the current one already stepped) / all entries``: the extra evaluations of
        the second look (kinks, larger steps) are in the rate, so the estimate — and the
        ETA — converge to the real total instead of growing at the end of every tensor.
        """
        entries, per, start = self._tensor
        all_entries = (self.total - 2) / per if entries or self.entries_done else 0
        if all_entries <= 0:
            return max(self.total, self.done)
        stepped = min((self.done - start) / per, entries)
        fraction = min((self.entries_done + stepped) / all_entries, 1.0)
        if fraction <= 0:
            return max(self.total, self.done)
        base = self.total - all_entries * per   # the base loss, evaluated before any entry
        return max(int(round(base + (self.done - base) / fraction)), self.done)

    def advance(self, n: int = 1) -> None:
        """Record ``n`` evaluations; redraw at most every :data:`REFRESH` seconds."""
        self.done += n
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + REFRESH
        if self._bar is None:
            elapsed = now - self.start
            predicted = elapsed * self.predicted_total() / max(self.done, 1)
            if predicted < self.min_seconds:
                return
            self._open()
        self._draw()

    def close(self) -> None:
        """Remove the bar (if one was drawn)."""
        if self._bar is None:
            return
        self._draw()
        if self.backend == "rich":
            self._bar[0].stop()
        elif self.backend == "tqdm":
            self._bar.close()
        else:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()
        self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- drawing --------------------------------------------------------------------------
    def _open(self) -> None:
        self.shown = True
        total = self.predicted_total()
        if self.backend == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream, force_terminal=True)
            bar = RichProgress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                               TextColumn("evaluations, ETA"), TimeRemainingColumn(),
                               console=console, transient=True, auto_refresh=False)
            bar.start()
            task = bar.add_task(self.label, total=total, completed=self.done)
            self._bar = (bar, task)
        elif self.backend == "tqdm":
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=self.done, file=self.stream, unit="eval",
                             desc=self.label, leave=False)
        else:
            self._bar = True

    def _draw(self) -> None:
        total = self.predicted_total()
        if self.backend == "rich":
            bar, task = self._bar
            bar.update(task, completed=self.done, total=total)
            bar.refresh()
        elif self.backend == "tqdm":
            self._bar.total = total
            self._bar.update(self.done - self._bar.n)
        else:
            self.stream.write("\r" + plain_line(self.label, self.done, total,
                                                time.perf_counter() - self.start))
            self.stream.flush()


def plain_line(label: str, done: int, total: int, elapsed: float, width: int = 30) -> str:
    """``gradcheck [#####-----] 120/400 evaluations, ETA 3s`` (ETA = elapsed·(total−done)/done)."""
    frac = done / total if total else 1.0
    filled = int(round(width * min(frac, 1.0)))
    eta = elapsed * (total - done) / done if done else float("nan")
    eta_text = f"{eta:.0f}s" if eta == eta else "?"
    return f"{label} [{'#' * filled}{'-' * (width - filled)}] {done}/{total} evaluations, " \
           f"ETA {eta_text}"


def _available_backend() -> str:
    for name in ("rich", "tqdm"):
        if available(name):
            return name
    return "plain"


def make_progress(progress: bool, total: int, stream: TextIO | None = None) -> Progress | None:
    """A :class:`Progress` when a bar may be shown, else ``None`` (no cost per evaluation)."""
    if not wanted(progress, stream):
        return None
    return Progress(total, stream)
