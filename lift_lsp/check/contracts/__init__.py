"""Contracts: a function's postconditions checked against its code (z3 proofs, Hypothesis, CrossHair).

`runner` (in the server) plans the work and turns the verdicts into statuses; `z3_engine` (in the server too: z3
reads the code, never runs it) proves or refutes what it can; `report` turns the statuses into findings. `replay`
(the worker's entry, standard library only), `search`, `hypothesis_engine` and `crosshair_engine` run in the sandbox
worker, never in the server.
"""
