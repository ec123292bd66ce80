"""``denoise(ds, model, options)``: the one in-memory product every surface calls.

The accessor (``ds.insar.denoise()``), :func:`insar_denoise.pipeline.run_pipeline` (files in
and out), ``batch`` and the demo all build the same Dataset here: the engine
(:func:`insar_denoise.inference.denoise_dataset`), then the trust stage
(:func:`insar_denoise.trust.stage.assess`: QC checks and warnings, uncertainty), then the
spatial reference (:mod:`insar_denoise.reference`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import xarray as xr

from insar_denoise.errors import ConfigError
from insar_denoise.options import REFERENCES, RunOptions

if TYPE_CHECKING:
    from insar_denoise.models.registry import LoadedModel, ModelLike
    from insar_denoise.reference import Reference


def resolve_model(model: ModelLike, options: RunOptions) -> LoadedModel | None:
    """The run's model, loaded (and its weights hashed) once: None for classical methods;
    ``model`` if given, else ``options.model`` (None: the packaged ``"default"``)."""
    if options.method != "model":
        return None
    from insar_denoise.inference.devices import resolve_device
    from insar_denoise.models.registry import as_model

    return as_model(options.model if model is None else model, resolve_device(options.device))


def resolve_run_reference(ds: xr.Dataset, options: RunOptions) -> Reference | None:
    """The reference the outputs are referred to (None: left as the engine gives them)."""
    from insar_denoise.reference import resolve_reference

    if options.reference not in REFERENCES:
        raise ConfigError(f"reference={options.reference!r}: use 'auto', or ref_yx / ref_lalo")
    refs = options.reference_kwargs()
    if not refs and options.reference == "none":
        return None
    return resolve_reference(ds, **refs)


def denoise(
    ds: xr.Dataset,
    model: ModelLike = None,
    options: RunOptions | None = None,
    *,
    persist_below: int = 0,
) -> xr.Dataset:
    """Denoise a canonical Dataset into the product ``run`` writes.

    Parameters
    ----------
    ds : canonical Dataset (``displacement(time, y, x)`` mm, ``dem(y, x)`` m, ``valid``).
    model : a :class:`~insar_denoise.models.LoadedModel` (resolve it once with
        :func:`resolve_model`), a name or path, or None (``options.model``).
    options : :class:`~insar_denoise.options.RunOptions` (default: ``run``'s defaults).
    persist_below : keep the result in memory (``Dataset.persist``) when its series are
        smaller than this many bytes (0: leave a lazy result lazy).

    Returns
    -------
    Dataset with ``cumulative_deformation``, ``deformation`` (and ``noise``,
    ``uncertainty``, ``uncertainty_95``, ``detection`` as asked or as the model gives them),
    in mm, referred to the reference; QC findings in ``insar_denoise_qc_warnings``.

    Raises
    ------
    ConfigError
        Bad options (``detection`` with a window model, ``uncertainty`` with a classical
        method, ...); InputError for a bad Dataset; ModelError for a bad model.
    """
    options = RunOptions() if options is None else options
    check_options(options)
    loaded = resolve_model(model, options)
    ref = resolve_run_reference(ds, options)
    from insar_denoise.inference.engine import denoise_dataset
    from insar_denoise.trust.stage import assess

    result = denoise_dataset(ds, loaded, **options.engine_kwargs())
    if options.detection and "detection" not in result:
        raise ConfigError("--detection needs a whole-stack model (this one has no detection map)")
    nbytes = result["deformation"].size * 4 * (1 + ("noise" in result))
    if nbytes < persist_below:  # written, plotted and summarised without recomputing
        result = result.persist()
    result = assess(ds, result, loaded, options)
    if ref is None:
        return result
    from insar_denoise.reference import apply_reference

    return apply_reference(result, ref)


def check_options(options: RunOptions) -> None:
    """Refuse option combinations before any work."""
    for name in ("uncertainty", "detection"):
        if getattr(options, name) and options.method != "model":
            raise ConfigError(f"--{name} needs --method model")
