"""What the evaluation and the trust checks both measure with (torch + numpy only).

- :mod:`~insar_denoise.scoring.metrics`: metrics of cumulative maps against a known truth;
- :mod:`~insar_denoise.scoring.benchmark_scenes`: the simulated benchmark's scenes;
- :mod:`~insar_denoise.scoring.ideal_observer`: matched-filter SNR of a known signal in the
  simulator's noise;
- :mod:`~insar_denoise.scoring.noise_estimate`: the simulator's noise parameters of a real stack.
"""
