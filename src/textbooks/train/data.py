"""Training windows cut from the packed token stream (paper, section 2.3: no padding, `<|endoftext|>` between
files).

The train split is one flat array; window w is tokens[w*seq_len : w*seq_len + seq_len + 1] (inputs and targets
shifted by one share all but one token). Each epoch visits every window once in a permutation seeded by
(seed, epoch). The position in that order, (epoch, index), is all the state there is: it goes into every
checkpoint and a resumed run continues from the same window. A global batch is the next `batch_size`
windows; process `rank` of `world_size` takes windows rank, rank + world_size, ... of it, cut into micro-batches.

Validation uses a fixed number of windows spread evenly over the val split, the same at every evaluation and
whatever the micro-batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Batch = tuple[torch.Tensor, torch.Tensor]  # inputs and targets, (micro_batch_size, seq_len) int64


@dataclass(frozen=True)
class DataPosition:
    """Where the next batch starts: the epoch and how many windows of its order are used."""

    epoch: int = 0
    index: int = 0


def window_count(tokens: int, seq_len: int) -> int:
    """Whole windows of seq_len + 1 tokens in a stream of `tokens` tokens, stepping by seq_len."""
    return max(0, (tokens - 1) // seq_len)


def _windows(tokens: np.ndarray, ids: np.ndarray, seq_len: int, micro_batch_size: int) -> list[Batch]:
    """The windows `ids`, as int64 micro-batches of inputs and targets."""
    rows = np.stack([np.asarray(tokens[w * seq_len:w * seq_len + seq_len + 1]) for w in ids]).astype(np.int64)
    block = torch.from_numpy(rows)
    return [(block[start:start + micro_batch_size, :-1], block[start:start + micro_batch_size, 1:])
            for start in range(0, len(ids), micro_batch_size)]


class TrainWindows:
    """This process's micro-batches of each global batch, in a seeded order that survives a restart."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, micro_batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1) -> None:
        self.tokens, self.seq_len, self.seed = tokens, seq_len, seed
        self.batch_size, self.micro_batch_size = batch_size, micro_batch_size
        self.rank, self.world_size = rank, world_size
        self.count = window_count(len(tokens), seq_len)
        self.position = DataPosition()
        self._order: tuple[int, np.ndarray] | None = None

    def order(self, epoch: int) -> np.ndarray:
        """The window ids of `epoch` in visiting order (the last epoch's order is cached)."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(self.count))
        return self._order[1]

    def next_batch(self) -> list[Batch]:
        """This process's share of the next global batch, as micro-batches; moves the position on."""
        ids, epoch, index = [], self.position.epoch, self.position.index
        needed = self.batch_size
        while needed:
            taken = self.order(epoch)[index:index + needed]
            ids.append(taken)
            needed -= len(taken)
            index += len(taken)
            if index == self.count:
                epoch, index = epoch + 1, 0
        self.position = DataPosition(epoch, index)
        mine = np.concatenate(ids)[self.rank::self.world_size]
        return _windows(self.tokens, mine, self.seq_len, self.micro_batch_size)


def validation_batches(tokens: np.ndarray, seq_len: int, windows: int, micro_batch_size: int,
                       rank: int = 0, world_size: int = 1) -> list[Batch]:
    """This process's share of `windows` fixed windows spread evenly over the val split.

    Every process gets the same number of windows (the count is rounded down to a multiple of world_size), so
    sharded models run the same number of forward passes on each.
    """
    available = window_count(len(tokens), seq_len)
    count = min(windows, available) // world_size * world_size
    ids = (np.arange(count) * (available // count))[rank::world_size] if count else np.arange(0)
    return _windows(tokens, ids, seq_len, micro_batch_size) if len(ids) else []
