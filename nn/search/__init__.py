"""Hyper-parameter search (the book's section 6.5) on Optuna: ``xpnet-search``.

A study's trials train a chapter 6 network with sampled values and score it
on a validation split carved from the training images. Workers (processes on
one machine, or the same command on several machines) share the study
through its storage (SQLite, a journal file, PostgreSQL or MySQL).

- ``space``: the ``--space`` syntax and what can be searched.
- ``settings``: the fixed settings, each trial's values, the ``xpnet-train`` command.
- ``objective``: the validation split and one trial's training.
- ``storage``: storage URLs, connection checks, failing dead workers' trials.
- ``study``: creating and joining a study, samplers and pruners.
- ``workers``: worker processes and their thread pinning.
- ``report``: ``trials.csv``, the best trials and figure 6-24.
- ``arguments``: the flags and their checks.
- ``cli``: the command line.

Optuna is imported only when a search runs (the ``search`` extra).
"""

from nn.search.settings import SearchSettings
from nn.search.space import DEFAULT_SPACE, parse_space

__all__ = ["DEFAULT_SPACE", "SearchSettings", "parse_space"]
