"""Evaluation of the model against classical baselines on simulated and user scenes.

- :mod:`.benchmark`: the stratified simulated benchmark (scenes, estimates, common target);
- :mod:`.metrics`: RMSE, correlation, SNR gain, detection threshold, false-positive level;
- :mod:`.runner`: :func:`run_benchmark` and :func:`evaluate_stack` (a stack with a truth map);
- :mod:`.report`: ``metrics.json``, ``report.md``, figures and the README results table.

``insar-denoise evaluate`` calls :func:`run_benchmark` or :func:`evaluate_stack`, then
:func:`write_report`.
"""

from __future__ import annotations

from insar_denoise.evaluation.report import results_table, write_report
from insar_denoise.evaluation.runner import Evaluation, evaluate_stack, run_benchmark

__all__ = ["Evaluation", "evaluate_stack", "results_table", "run_benchmark", "write_report"]
