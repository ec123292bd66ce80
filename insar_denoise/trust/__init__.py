"""Know what to trust on your own data (issue 13).

- :mod:`.qc`: out-of-distribution checks against the model's training ranges
  (:func:`qc_checks`) and the QC report of a run (:func:`write_qc_report`; ``run --report``);
- :mod:`.inject`: inject synthetic sources of known amplitude into a real stack and measure
  their recovery and the detection threshold (:func:`run_injection`; ``insar-denoise inject``);
- :mod:`.uncertainty`: calibrated 1-sigma (68 %) and 95 % uncertainty bands of the
  cumulative map, fitted on the simulated benchmark (:func:`predict_with_uncertainty`,
  :func:`calibrate`; ``run --uncertainty``, ``ds.insar.denoise(uncertainty=True)``), built on
  :mod:`.tta` (test-time copies), :mod:`.bands` (features, band fit, coverage scores) and
  :mod:`.calibration` (fit on the benchmark scenes, the calibration files);
- :mod:`.stage`: the trust stage of a product, :func:`assess` (QC findings, uncertainty),
  the one entry :func:`insar_denoise.product.denoise` calls;
- :mod:`.sigma_head`: an optional variance head trained with a Gaussian likelihood (an
  experiment, not shipped: ``benchmarks/uncertainty_modes.py``).
"""

from __future__ import annotations

from insar_denoise.trust.inject import InjectionResult, run_injection, write_injection_report
from insar_denoise.trust.qc import (
    OutOfDistributionWarning,
    QCWarning,
    check_report_dir,
    qc_checks,
    write_qc_report,
)
from insar_denoise.trust.stage import assess, qc_findings
from insar_denoise.trust.uncertainty import (
    calibrate,
    load_calibration,
    predict_with_uncertainty,
    write_uncertainty,
)

__all__ = [
    "InjectionResult",
    "OutOfDistributionWarning",
    "QCWarning",
    "assess",
    "calibrate",
    "check_report_dir",
    "load_calibration",
    "predict_with_uncertainty",
    "qc_checks",
    "qc_findings",
    "run_injection",
    "write_injection_report",
    "write_qc_report",
    "write_uncertainty",
]
