"""Row strips: the Gaussian filters, medians and the significance gate are those of the whole
map, bit for bit, whatever the strip height."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from insar_denoise.inference import significance as sig
from insar_denoise.inference import strips
from insar_denoise.inference.disk_stack import DiskStack


@pytest.mark.parametrize("sigma", [1.0, 2.5, 16.0])
@pytest.mark.parametrize("kind", ["smooth", "bandpass", "slope_x", "slope_y"])
def test_filtered_rows_equal_the_whole_map_filter(sigma, kind, monkeypatch):
    rng = np.random.default_rng(0)
    image = rng.normal(0, 1, (97, 41)).astype(np.float32)
    monkeypatch.setattr(strips, "STRIP_PX", 41 * 7)  # 7-row strips, smaller than the halo
    whole = {
        "smooth": gaussian_filter(image, sigma, mode="reflect"),
        "bandpass": gaussian_filter(image, sigma, mode="reflect")
        - gaussian_filter(image, 2 * sigma, mode="reflect"),
        "slope_x": gaussian_filter(image, sigma, order=(0, 1), mode="reflect"),
        "slope_y": gaussian_filter(image, sigma, order=(1, 0), mode="reflect"),
    }[kind]
    rows = [
        strips.filtered_rows(lambda lo, hi: image[lo:hi], 97, a, b, sigma, kind)
        for a, b in strips.row_strips(97, 41)
    ]
    assert len(rows) == 14
    np.testing.assert_array_equal(np.concatenate(rows), whole)


def test_median_and_robust_std_match_numpy(monkeypatch):
    rng = np.random.default_rng(1)
    image = rng.standard_t(3, (60, 50)).astype(np.float32)
    image[5:9, 3:30] = np.nan
    monkeypatch.setattr(strips, "STRIP_PX", 50 * 11)
    v = image[np.isfinite(image)]
    med, values = strips.median(lambda lo, hi: image[lo:hi], image.shape, strips.finite)
    assert med == np.median(v) and np.array_equal(np.sort(values), np.sort(v))
    expect = 1.4826 * np.median(np.abs(v - np.median(v)))
    assert strips.robust_std(lambda lo, hi: image[lo:hi], image.shape) == float(expect)


def test_gate_in_strips_equals_the_gate_in_one_strip(monkeypatch):
    rng = np.random.default_rng(2)
    h, w = 170, 180
    noise = rng.normal(0, 1, (5, h, w)).astype(np.float32)
    noise[:, 20:30, 5:12] = np.nan
    cum = rng.normal(0, 0.5, (h, w)).astype(np.float32)
    cum[80:90, 90:100] += 8.0  # detected at the finer scales
    proj = noise[4]
    # the widened patch covers 0.76 of this small scene: keep the gate's own map (the rule
    # that opens a gate over WHOLE_SCENE_SHARE has its own test)
    monkeypatch.setattr(sig, "WHOLE_SCENE_SHARE", 1.0)
    whole = sig.gate(cum, noise[:4], projection=proj)
    assert whole[0].min() == 0.0 and whole[0].max() == 1.0 and whole[1].max() > sig.THRESHOLD
    assert len(whole[1]) == len(sig.FILTERS)
    monkeypatch.setattr(strips, "STRIP_PX", w * 13)  # 14 strips
    g, zmax, missed = sig.gate(cum, noise[:4], projection=proj)
    disk = sig.gate(cum, noise[:4], projection=proj, scratch=DiskStack)
    for got in ((g, zmax, missed), (disk[0][0:h], disk[1], disk[2][0:h])):
        for a, b in zip(whole, got, strict=True):
            np.testing.assert_array_equal(a, b)
