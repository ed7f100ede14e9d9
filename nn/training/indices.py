"""A run's random batch indices: the host generator's draws, on the device in blocks.

Every backend draws the same indices from the same host generator, one
``rng.integers(train_size, size=batch_size)`` per step (the book's
``np.random.choice`` makes the same draws), so runs are reproducible across
backends and a checkpoint's generator state is exact at any iteration. On a
device backend, copying each step's 100 indices would be one host-to-device
copy per step; instead a copy of the generator draws the next
``block_steps`` steps ahead, they go to the device in one copy (one stacked
host array, into the same device buffer every time, so that captured steps
can read it), and each step takes its row of that block (a view: no launch,
no copy). The generator itself follows: at the end of a block it takes the
state its copy reached after drawing the block (one assignment, not a draw per
step), and within a block
``settle`` makes the draws still owed,
so that whoever reads its state (a checkpoint) sees it exactly where the
iteration is.
"""

from __future__ import annotations

import copy

import backend as B

__all__ = ["BatchIndices"]


class BatchIndices:
    """``next()`` -> the step's (batch_size,) int64 indices on ``backend``.

    Parameters
    ----------
    backend : Backend
        Host backends get the host array; device backends a row of the block.
    rng : numpy.random.Generator
        The run's generator (also the one a checkpoint saves).
    train_size, batch_size : int
    block_steps : int
        Steps per upload on a device backend (the trainer: one epoch).
    """

    def __init__(self, backend, rng, train_size: int, batch_size: int, block_steps):
        self.backend = backend
        self.rng = rng
        self.train_size = train_size
        self.batch_size = batch_size
        self.block_steps = max(1, int(block_steps))
        self._block = None
        self._pos = 0
        self._valid = False
        self._owed = 0  # draws the generator still owes for rows taken
        self._end_state = None

    def next(self):
        if self.backend.on_host:
            # The real generator, exactly as on the CPU (a host call, no copy).
            return self.rng.integers(self.train_size, size=self.batch_size)
        block, row, _ = self.block()
        self.skip(1)
        return block[row]

    def block(self):
        """Device backends: ``(block, row, left)``, the (block_steps,
        batch_size) device block (the same array after every refill), the
        next step's row in it and the steps left in it (at least 1)."""
        if not self._valid or self._pos == self.block_steps:
            self.settle()
            self._refill()
        return self._block, self._pos, self.block_steps - self._pos

    def skip(self, steps: int) -> None:
        """Take ``steps`` rows of the block; the generator owes their draws
        (see ``settle``) until the
        block ends."""
        self._pos += steps
        self._owed += steps
        if self._pos == self.block_steps:
            # Where the copy that drew this block ended: exactly these draws.
            self.rng.bit_generator.state = self._end_state
            self._owed = 0

    def settle(self) -> None:
        """Make the generator's draws owed for the rows taken so far (before
        its state is read: a checkpoint)."""
        for _ in range(self._owed):
            self.rng.integers(self.train_size, size=self.batch_size)
        self._owed = 0

    def reset(self) -> None:
        """Forget the block drawn ahead (after the generator's state was set)."""
        self._valid = False
        self._owed = 0

    def _refill(self) -> None:
        ahead = copy.deepcopy(self.rng)  # the same state: the same next draws
        first = ahead.integers(self.train_size, size=self.batch_size)
        host = B.get_array_module(first)  # NumPy: the generator's arrays
        rows = host.empty((self.block_steps, self.batch_size), dtype=first.dtype)
        rows[0] = first
        for i in range(1, self.block_steps):
            rows[i] = ahead.integers(self.train_size, size=self.batch_size)
        self._end_state = ahead.bit_generator.state
        # One host-to-device copy of one stacked host array (CuPy sends a list
        # of arrays through a NumPy 2-incompatible path), into the same device
        # memory every epoch.
        if self._block is None:
            self._block = self.backend.asarray(rows)
        elif hasattr(self._block, "set"):
            self._block.set(rows)  # CuPy's ndarray.set: one copy, same memory
        else:
            self._block[...] = rows
        self._pos, self._valid = 0, True
