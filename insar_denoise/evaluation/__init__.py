"""Evaluation of the model against classical baselines on simulated and user scenes.

- :mod:`.benchmark`: the stratified simulated benchmark (scenes, estimates, common target);
- :mod:`.metrics`: RMSE, correlation, SNR gain, detection threshold, false-positive level;
- :mod:`.runner`: :func:`run_benchmark` and :func:`evaluate_stack` (a stack with a truth map);
- :mod:`.report`: ``metrics.json``, ``report.md``, figures and the README results table;
- :mod:`.referee` (v2 benchmark: whole stacks scored against the ideal observer's SNR,
  :func:`run_referee`), :mod:`.referee_scoring` (its metrics and tables) and
  :mod:`.referee_report` (its report).

``insar-denoise evaluate`` calls :func:`run_referee` (default), :func:`run_benchmark`
(``--suite v1``) or :func:`evaluate_stack`, then writes the report.
"""

from __future__ import annotations

from insar_denoise.evaluation.referee import run_referee
from insar_denoise.evaluation.report import results_table, write_report
from insar_denoise.evaluation.runner import Evaluation, evaluate_stack, run_benchmark

__all__ = [
    "Evaluation",
    "evaluate_stack",
    "results_table",
    "run_benchmark",
    "run_referee",
    "write_report",
]
