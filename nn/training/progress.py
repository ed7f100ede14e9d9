"""What a training run prints: a tqdm bar on a terminal, plain lines elsewhere.

The trainer calls a reporter's ``start``, ``progress`` (at most about once a
second, when losses are pulled to the host anyway), ``evaluation`` (once per
epoch) and ``finish``. `SilentReporter` prints nothing;
`ConsoleReporter` prints the book's ``train acc, test acc | ...`` lines.
"""

from __future__ import annotations

import sys
import time

#: Seconds between plain progress lines when no progress bar is shown.
PLAIN_INTERVAL = 10.0


class SilentReporter:
    """A reporter that prints nothing (``--quiet`` and library use)."""

    def start(self, total: int, done: int) -> None:
        pass

    def progress(self, iteration: int, loss: float) -> None:
        pass

    def evaluation(self, record) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


class ConsoleReporter(SilentReporter):
    """Progress bar (tqdm on a terminal's stderr) or periodic plain lines.

    ``bar``: True forces tqdm, False forces plain lines, None (default) picks
    tqdm when it is installed and stderr is a terminal.
    """

    def __init__(self, stream=None, bar: bool | None = None):
        self.stream = stream if stream is not None else sys.stdout
        if bar is None:
            bar = sys.stderr.isatty() and _tqdm_class() is not None
        self.use_bar = bool(bar)
        self._bar = None
        self._total = 0
        self._last_line = 0.0
        self._acc = ""
        self._loss = ""

    def start(self, total: int, done: int) -> None:
        self._total = total
        self._last_line = time.monotonic()
        if self.use_bar and done < total:
            self._bar = _tqdm_class()(
                total=total, initial=done, unit="it", file=sys.stderr, leave=False
            )

    def progress(self, iteration: int, loss: float) -> None:
        self._loss = f"loss {loss:.4f}"
        if self._bar is not None:
            self._bar.update(iteration - self._bar.n)
            self._bar.set_postfix_str(self._loss + self._acc, refresh=False)
        elif time.monotonic() - self._last_line >= PLAIN_INTERVAL:
            self.message(
                f"iter {iteration:>{len(str(self._total))}}/{self._total}  "
                f"loss {loss:.4f}{self._acc}"
            )

    def evaluation(self, record) -> None:
        self._acc = f"  train {record.train_acc:.4f}  test {record.test_acc:.4f}"
        if self._bar is not None:  # the bar shows this evaluation now, not next
            self._bar.set_postfix_str(self._loss + self._acc, refresh=True)
        width = len(str(self._total))
        self.message(
            f"epoch {record.epoch:5.2f}  iter {record.iteration:>{width}}  "
            f"train acc, test acc | {record.train_acc:.4f}, {record.test_acc:.4f}"
        )

    def message(self, text: str) -> None:
        self._last_line = time.monotonic()
        if self._bar is not None:
            self._bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _tqdm_class():
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm
