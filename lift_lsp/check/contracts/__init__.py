"""Contracts: a function's postconditions checked against its code (z3 proofs, Hypothesis, CrossHair).

`runner` (in the server) plans the work and turns the verdicts into statuses; `replay` (the worker's entry, standard
library only), `search`, `hypothesis_engine` and `crosshair_engine` run in the sandbox worker, never in the server.
"""
