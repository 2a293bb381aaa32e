# Licensed under a 3-clause BSD style license - see LICENSE
"""
The measured stars' own light in a whole-frame sky level (internal;
`~ccdphot_ext.SkyEstimate.without_apertures` uses it).

A whole-frame level (`~ccdphot_ext.SkyEstimate.from_image`) is the clipped
mean (or mean, or median) of the pixels its source mask leaves. Stars too
faint for that mask (a few hundred electrons on a sky of 100) keep their
light in it: the level reads high by their light over the pixels used,
and every flux measured against it reads low by its aperture's area times
that. When the photometry measures those stars, their apertures say where
the light is: the level is measured again with the apertures, grown for
their wings (`GROWTH`), added to its mask (the source mask, clip and
corrections as before), where the pixels of the apertures were used and
would move it by more than `LIFT_FRACTION` of its error (estimated
first from those pixels alone, without measuring again).
"""

import dataclasses
import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import all_positions, aperture_groups, aperture_positions
from ..utils.numbers import check_bool
from .estimators import is_digitised
from .globalsky import MASK_BIN

__all__ = []

#: A whole-frame level is measured again without the apertures when
#: their (grown) pixels lift it by more than this fraction of its error (a
#: flux of ``n_pix`` pixels is then biased by less than ``LIFT_FRACTION *
#: sqrt(n_pix / n_sky)`` of its error) ...
LIFT_FRACTION = 0.1
#: ... and bias the largest aperture's flux (``n_pix`` pixels) by more
#: than this fraction of the sky's noise in it, ``sqrt(n_pix) std`` (less
#: than its flux error): a few apertures on a large frame move its level
#: by a fraction of its error but their fluxes by far less than theirs.
#: Either way, up or down, and whether it is their stars' light or their
#: noise: measured again, the level shares no pixel with the apertures,
#: as the error budget's ``sky_mean`` term takes it (a faint star on a
#: postage stamp lifts the level by about its error, and biases its own
#: flux by a third of its error, while its light is within the noise of
#: its pixels).
LIFT_FLUX = 0.02
#: Each aperture is grown, for its star's wings, to a disc of this many
#: times half its larger side (a circle's radius), at least `MIN_MARGIN`
#: pixels beyond it: a Gaussian star of 1.5 px measured in a circle of r =
#: 4 keeps 2e-5 of its light beyond r = 6, a Moffat star (beta 3) in a
#: circle of 3 FWHM 0.2% beyond 4.5 FWHM.
GROWTH = 1.5
MIN_MARGIN = 2.0
#: Where the grown discs would leave fewer than this fraction of the
#: pixels the level used (apertures covering most of a small frame), the
#: discs are grown by `MIN_MARGIN` pixels only.
MIN_LEFT_FRACTION = 0.25
#: Pixels of the strided sample that tell whether the frame measured is
#: the one the sky was estimated on.
SAMPLE_PIXELS = 4096
#: ... equal to this relative tolerance (single precision holds 6e-8).
SAME_FRAME_RTOL = 1e-6


@dataclasses.dataclass
class WholeFrame:
    """How a whole-frame level was measured: what measuring it again
    without the apertures needs (the frame's own mask and uncertainty,
    not its data, which the photometry gives again), and what tells
    whether an aperture's pixels were used."""

    shape: tuple
    mask: object
    uncertainty: object
    method: str
    sigma: float
    maxiters: object
    mask_sources: bool
    gain: object
    known: object  # (blocks, variation, density) of the source mask
    bounds: object  # (lo, hi) of a clip, or None
    raw_level: float  # the estimator's level, before any correction
    raw_std: float
    n_used: int
    sample: np.ndarray
    matched_filter: object = None
    variation: object = None  # the frame's coarse background about it
    warned: bool = False  # its source mask's coverage warned

    @classmethod
    def of(cls, frame, res, *, method, sigma, maxiters, mask_sources, gain):
        """The record of a whole-frame estimate of ``frame`` from the
        statistics ``res`` of `global_sky`."""
        blocks = res['usable'].blocks
        known = (None if blocks is None else
                 (blocks, res['variation'],
                  res['meta'].get('faint_source_density', 0.0)))
        bounds = res['meta'].get('discrete_window')
        if bounds is not None:  # the mean of the pixels in that window
            method = 'mean'
        elif method == 'sigma_clip':
            if 'clip_bounds' in res['meta']:
                bounds = res['meta']['clip_bounds']
            else:
                raw, keep = res['pixels']
                kept = raw[keep] if keep is not None else raw
                bounds = (float(np.min(kept)), float(np.max(kept)))
        return cls(shape=tuple(frame.shape), mask=frame.mask,
                   uncertainty=frame.uncertainty, method=method,
                   sigma=sigma, maxiters=maxiters,
                   mask_sources=mask_sources, gain=gain, known=known,
                   bounds=bounds, raw_level=float(res['level']),
                   raw_std=float(res['std']), n_used=int(res['n_pix']),
                   sample=frame_sample(frame.data),
                   matched_filter=res['meta'].get('matched_filter'),
                   variation=res['variation'],
                   warned=bool(res.get('mask_warned', False)))

    def same_frame(self, frame):
        """True when ``frame`` holds the data this level was measured on
        (its shape, and a strided sample of its pixels, to
        `SAME_FRAME_RTOL`: a single-precision copy is the same frame)."""
        return (tuple(frame.shape) == self.shape
                and same_sample(frame.data, self.sample))

    def used(self, data, ys, xs):
        """Which of the pixels ``ys``, ``xs`` of ``data`` the level used:
        finite, not masked, with a finite uncertainty, off the source mask
        and inside the clip."""
        values = np.asarray(data[ys, xs], dtype=np.float64)
        used = np.isfinite(values)
        if self.mask is not None:
            used &= ~self.mask[ys, xs]
        if self.uncertainty is not None:
            used &= np.isfinite(self.uncertainty[ys, xs])
        if self.known is not None:
            used &= ~self.known[0][ys // MASK_BIN, xs // MASK_BIN]
        if self.bounds is not None:
            with np.errstate(invalid='ignore'):
                used &= (values >= self.bounds[0]) & (values <= self.bounds[1])
        return values, used

    def lift(self, values, used, ys, xs):
        """
        How far the ``used`` ``values`` of the apertures' discs lift the
        level, estimated without measuring it again: the level less that
        of the other pixels it used (their stars' light and their noise).
        For a mean a pixel's excess is its value less the level, for a
        median +1 or -1 (above or below it) times the median's change per
        pixel moved (``sqrt(2 pi) std / 2 n``). The excess is taken about
        the frame's coarse background at each pixel (``ys``, ``xs``: the
        level plus the `BackgroundVariation` the level keeps), so that a
        gradient, which lifts the apertures on its high side, is not taken
        for their light.
        """
        v = values[used]
        local = self.raw_level
        if self.variation is not None:
            local = local + np.asarray(self.variation(xs[used], ys[used]),
                                       dtype=np.float64)
        if self.method == 'median':
            excess = np.sign(v - local)
            scale = math.sqrt(2.0 * math.pi) * self.raw_std / (
                2.0 * self.n_used)
        else:
            excess = v - local
            scale = 1.0 / max(self.n_used - v.size, 1)
        return float(np.sum(excess)) * scale


    def gradient_shift(self, ys, xs):
        """
        How far the frame's coarse background (the `BackgroundVariation`
        the level keeps) lifts the level's pixels less the pixels ``ys``,
        ``xs`` over all of its pixels: what a level measured again
        without those pixels must shed to describe the frame as the
        first did (apertures on a grid that leave the sky only at one
        edge of a tilted frame would otherwise give that edge's level).
        The level's pixels are taken as a strided sample of the frame
        off its source mask; 0 without a variation.
        """
        if self.variation is None or not ys.size:
            return 0.0
        ny, nx = self.shape
        stride = max(1, int(math.sqrt(ny * nx / SAMPLE_PIXELS)))
        gy, gx = (a.ravel() for a in np.mgrid[0:ny:stride, 0:nx:stride])
        if self.known is not None:
            off = ~self.known[0][gy // MASK_BIN, gx // MASK_BIN]
            gy, gx = gy[off], gx[off]
        if not gy.size:
            return 0.0
        # each sampled pixel stands for the stride x stride pixels it
        # starts: the map is read at their centre (read at the sampled
        # pixels, whose mean lies half a stride short of the frame's, a
        # tilted map's mean was off by half a stride's tilt)
        centre = (stride - 1) / 2.0
        mean_all = float(np.mean(self.variation(gx + centre, gy + centre),
                                 dtype=np.float64))
        mean_out = float(np.mean(self.variation(xs, ys), dtype=np.float64))
        n_out = ys.size
        left = self.n_used - n_out
        if left < 1:
            return 0.0
        mean_left = (self.n_used * mean_all - n_out * mean_out) / left
        return mean_left - mean_all


#: The ``meta`` key of `remnant_note`'s note on a level measured again.
REMNANT_KEY = 'aperture_remnant_doubtful'
#: A level measured again without the apertures is doubtful where the
#: frame's coarse background moves it (`WholeFrame.gradient_shift`) by
#: more than this many of its errors ...
REMNANT_NSIGMA = 3.0
#: ... and by more than this fraction of the pixel noise. Blank boxes of
#: 3-11 px filling a 256 x 256 frame of a cluster's glow (15-30 ADU at
#: its centre on a 10 ADU noise) and 600-1500 stars leave the level 90 to
#: 1500 pixels of the 4400-6000 it used, between the stars near the glow's
#: peak, clipped about the first level: the map moved it by 0.35-1.2 of
#: the noise (4-13 of its errors) where the boxes hold no star light, and
#: the level fell 3.3-12 ADU, 22-81 of the first level's errors. A tilt of
#: 0.2 of the noise across a frame moves it by a twentieth of the noise;
#: stars' apertures on a flat frame, not at all.
REMNANT_STD_FRACTION = 0.2


def remnant_note(shift, error, std, n_left, n_apertures):
    """
    The note of a whole-frame level measured again without the apertures
    that rests on pixels no fair sample of the sky, or None.

    Parameters
    ----------
    shift : float
        How far the frame's coarse background moved the level measured
        again (`WholeFrame.gradient_shift`: subtracted from it).
    error, std : float
        The level's ``error_on_mean`` and standard deviation per pixel.
    n_left : int
        The pixels it was measured on.
    n_apertures : int
        The apertures left out.

    Returns
    -------
    note : str or None
        None where ``shift`` is within `REMNANT_NSIGMA` times ``error``
        or `REMNANT_STD_FRACTION` times ``std``.
    """
    if not (abs(shift) > REMNANT_NSIGMA * error
            and abs(shift) > REMNANT_STD_FRACTION * std):
        return None
    return (f'the whole-frame sky measured again without the {n_apertures} '
            f'apertures rests on the {n_left} pixels they leave, which the '
            "frame's coarse background, read from the first level's map, "
            f'puts {shift:.3g} per pixel off its mean ({shift / error:.1f} '
            f'times its error, {shift / std:.2f} of the pixel noise): those '
            'pixels are no fair sample of the sky (a varying background '
            'clipped about one level) and the level may be off by as much; '
            'fluxes measured against it are doubtful: use a local sky '
            '(annulus or background map)')


#: Positions painted at a time by `aperture_pixels` (bounds its temporary
#: arrays to this many discs).
PAINT_CHUNK = 256


def frame_sample(data):
    """A strided sample of about `SAMPLE_PIXELS` pixels of ``data``."""
    ny, nx = data.shape
    stride = max(1, int(math.sqrt(ny * nx / SAMPLE_PIXELS)))
    return np.array(data[::stride, ::stride], dtype=np.float64)


def same_sample(data, sample):
    """True when ``data`` (of the sampled frame's shape) holds the pixels
    of ``sample`` (`frame_sample`), to `SAME_FRAME_RTOL`: a
    single-precision copy is the same frame."""
    return bool(np.allclose(frame_sample(data), sample,
                            rtol=SAME_FRAME_RTOL, atol=0.0, equal_nan=True))


def aperture_pixels(apertures, shape, *, growth=GROWTH):
    """
    The pixels of the grown discs of ``apertures``.

    Returns ``ys``, ``xs`` (each pixel once, within ``growth`` times half
    the larger side of its aperture's bounding box from its centre, at
    least `MIN_MARGIN` pixels more), ``own`` (True within half that
    side: an aperture's own pixels) and the largest aperture's area
    (pixels).

    The discs are painted onto coverage and ownership arrays covering the
    part of the frame they reach, a chunk of positions at a time
    (`PAINT_CHUNK`).
    """
    ny, nx = shape
    discs = []
    largest = 0.0
    for ap, _ in aperture_groups(apertures):
        first = ap if ap.isscalar else ap[0]
        largest = max(largest, float(first.area))
        try:
            half = max(first.bbox.shape) / 2.0
        except (ValueError, TypeError, OverflowError):  # NaN position
            half = 0.0
        outer = max(growth * half, half + MIN_MARGIN)
        discs.append((aperture_positions(ap), half, outer))
    # paint only the frame's part the discs can reach (one star's measure
    # does not allocate the whole frame)
    reach = [(p[np.isfinite(p).all(axis=1)], int(math.ceil(outer)))
             for p, _, outer in discs]
    reach = [(p, k) for p, k in reach if len(p)]
    if not reach:
        empty = np.zeros(0, dtype=np.intp)
        return empty, empty, np.zeros(0, dtype=bool), largest
    y0 = max(0, min(int(np.rint(p[:, 1]).min()) - k for p, k in reach))
    x0 = max(0, min(int(np.rint(p[:, 0]).min()) - k for p, k in reach))
    y1 = min(ny, max(int(np.rint(p[:, 1]).max()) + k + 1 for p, k in reach))
    x1 = min(nx, max(int(np.rint(p[:, 0]).max()) + k + 1 for p, k in reach))
    wy, wx = max(y1 - y0, 0), max(x1 - x0, 0)
    covered = np.zeros(wy * wx, dtype=bool)
    own = np.zeros(wy * wx, dtype=bool)
    for positions, half, outer in discs:
        k = int(math.ceil(outer))
        dy, dx = (a.ravel() for a in np.mgrid[-k:k + 1, -k:k + 1])
        for start in range(0, len(positions), PAINT_CHUNK):
            chunk = positions[start:start + PAINT_CHUNK]
            finite = np.isfinite(chunk).all(axis=1)
            x, y = chunk[finite, 0:1], chunk[finite, 1:2]
            py = np.rint(y).astype(np.intp) + dy
            px = np.rint(x).astype(np.intp) + dx
            r2 = (py - y) ** 2 + (px - x) ** 2
            keep = ((r2 <= outer * outer) & (py >= 0) & (py < ny)
                    & (px >= 0) & (px < nx))
            flat = (py - y0) * wx + (px - x0)
            covered[flat[keep]] = True
            own[flat[keep & (r2 <= half * half)]] = True
    flat = np.flatnonzero(covered)
    return flat // wx + y0, flat % wx + x0, own[flat], largest


#: A whole-frame sky in whole electrons at the gain with as much variance
#: as its photons (no read noise: the exact model of `poisson_level`, whose
#: read noise is at least 1 e- to stay smooth, does not describe it) and a
#: scatter under `DISCRETE_PHOTON_STEPS` electrons, or
#: without a gain in whole data units with a scatter under this many of
#: them, is measured by the mean of its pixels within `DISCRETE_WINDOW`
#: standard deviations (at least that many steps) of their median: a
#: median or a clipped mean of such pixels is off by a fraction of a step
#: that no model of a continuous sky removes (a 2 e- sky in whole
#: electrons read 1 to 2 of its errors high, a 0.5 e- sky 44 low or, by
#: its median, 0 with an error of 0), while the mean of a Poisson sky is
#: unbiased.
DISCRETE_STEPS = 3.0
DISCRETE_WINDOW = 10.0
#: Whole electrons without read noise are measured so below this many
#: electrons of scatter (a sky under 25 e-); above it the exact model's
#: floor of 1 e- of read noise is a small part of their variance.
DISCRETE_PHOTON_STEPS = 5.0
#: Standard errors of the variance by which whole electrons' variance may
#: exceed their mean and still be taken as photons without read noise.
DISCRETE_VARIANCE_ERRORS = 4.0


def _lattice(values, gain):
    """The step of the lattice ``values`` lie on: ``1 / gain`` for whole
    electrons (``gain`` given), 1 for whole data units, else None; and
    whether it is whole electrons."""
    if gain is not None:
        electrons = values * gain
        if np.all(np.abs(electrons - np.round(electrons))
                  <= 1e-6 * np.maximum(1.0, np.abs(electrons))):
            return 1.0 / gain, True
    if is_digitised(values):
        return 1.0, False
    return None, False


def discrete_level(frame, res, gain, method, *, stacklevel=3):
    """
    Measure a strongly discrete whole-frame sky by the mean of its pixels.

    Where the usable pixels of ``res`` (`global_sky`'s statistics of
    ``frame``) are whole electrons at ``gain`` whose variance is their
    photons' (within `DISCRETE_VARIANCE_ERRORS` standard errors: no read
    noise) under `DISCRETE_PHOTON_STEPS` electrons of scatter, or,
    without a gain, whole data units (`_lattice`) with a scatter under
    `DISCRETE_STEPS` of them, ``res`` is given the mean, standard
    deviation and count of the usable pixels within `DISCRETE_WINDOW`
    standard deviations (at least that many steps) of their median
    (efficiency 1), ``meta`` the window and a note, and an
    `~astropy.utils.exceptions.AstropyUserWarning` says so. Returns True
    when it did (never for ``method='mean'``, the plain mean already).
    """
    from .globalsky import SUBSAMPLE_MIN, _subsample, _Usable

    if method == 'mean':  # the mean already, and unbiased
        return False
    usable = _Usable(frame)
    usable.blocks = res['usable'].blocks
    sample = _subsample(usable, SUBSAMPLE_MIN)[0]
    sample = sample[np.isfinite(sample)]
    if sample.size < 2:
        return False
    step, electrons = _lattice(sample, gain)
    if step is None:
        return False
    centre = float(np.median(sample))
    spread = float(res['std']) if np.isfinite(res['std']) else 0.0
    width = DISCRETE_WINDOW * max(spread, step)
    inside = sample[np.abs(sample - centre) <= width]
    scatter = float(np.std(inside))
    if not scatter > 0 or inside.size < 2:  # equal pixels: doubted as such
        return False
    photons = False
    if electrons:  # whole electrons, as many as their variance says
        mean_e, var_e = float(np.mean(inside)) * gain, scatter ** 2 * gain ** 2
        photons = mean_e > 0 and abs(var_e - mean_e) <= (
            DISCRETE_VARIANCE_ERRORS * var_e * math.sqrt(2.0 / inside.size))
    # with the gain, the exact model of a Poisson sky applies unless the
    # pixels are photons without read noise; without it, nothing corrects
    # the estimator of a few steps
    if not (photons and scatter < DISCRETE_PHOTON_STEPS * step):
        return False
    width = DISCRETE_WINDOW * max(scatter, step)
    lo, hi = centre - width, centre + width
    n = s1 = s2 = su = 0.0
    for top, bottom in usable.bands():
        data = frame.data[top:bottom]
        keep = usable.rows(top, bottom)
        with np.errstate(invalid='ignore'):
            keep &= (data >= lo) & (data <= hi)
        d = np.asarray(data[keep], dtype=np.float64) - centre
        n += d.size
        s1 += float(np.sum(d))
        s2 += float(np.dot(d, d))
        if frame.uncertainty is not None:
            su += float(np.sum(np.square(frame.uncertainty[top:bottom][keep],
                                         dtype=np.float64)))
    if n < 2:
        return False
    mean = s1 / n
    res.update(level=centre + mean,
               std=math.sqrt(max(s2 / n - mean * mean, 0.0)), n_pix=int(n),
               efficiency=1.0,
               propagated=(math.sqrt(su) / n if frame.uncertainty is not None
                           else None))
    what = (f'whole electrons at gain={gain:g}' if electrons
            else 'whole data units')
    why = ('no more variance than their photons (no read noise)' if photons
           else f'a scatter of {scatter:.3g}, under {DISCRETE_STEPS:g} '
                'steps')
    note = (f'the sky pixels are {what}, with {why}: a {method} level of '
            'such pixels is off by a fraction of a step that no correction '
            'removes, so the level is '
            f'the mean of the {int(n)} pixels within {width:.3g} of their '
            f'median ({lo:.4g} to {hi:.4g})')
    res['meta'].update(discrete_window=(lo, hi), discrete_note=note)
    warnings.warn(note, AstropyUserWarning, stacklevel=stacklevel)
    return True


def sky_for_apertures(sky, data, apertures, remeasure):
    """
    The sky the photometry of ``apertures`` on ``data`` subtracts: a
    whole-frame level without the light of those apertures' stars
    (`~ccdphot_ext.SkyEstimate.without_apertures`) when ``remeasure`` is
    true, else ``sky`` as given. The one place `~ccdphot_ext.photometer`,
    `~ccdphot_ext.measure` and optimal extraction choose it.

    Raises
    ------
    TypeError
        If ``remeasure`` is not a bool (the photometry's
        ``sky_without_apertures``).
    """
    if (not check_bool(remeasure, 'sky_without_apertures')
            or not hasattr(sky, 'without_apertures')):  # refused elsewhere
        return sky
    return sky.without_apertures(data, apertures)


def map_without_apertures(record, value, error_on_mean, rms, frame,
                          apertures):
    """
    A Background2D map measured again without the light of the stars of
    ``apertures``.

    ``record`` is the map's `~ccdphot_ext.background.maps.MapSources`
    (kept by `~ccdphot_ext.SkyEstimate.from_background2d` with ``data=``),
    ``value``, ``error_on_mean`` and ``rms`` its maps, ``frame`` the frame
    measured. The apertures are grown as for a whole-frame level
    (`aperture_pixels`, `GROWTH`; by `MIN_MARGIN` only where the discs
    would leave fewer than `MIN_LEFT_FRACTION` of the pixels the meshes
    used), added to the source mask, and the meshes measured again by the
    map's own steps (`~ccdphot_ext.background.maps.source_lift`: a mesh
    the discs all but empty takes its level from its neighbours where its
    meshes are small, its error grows with the pixels it loses).

    Returns
    -------
    parts : tuple or None or str
        ``(level, rms, error_on_mean, meta, record)`` of the map measured
        again (``record`` with the discs added); None where there is
        nothing to do (another frame, the discs' own pixels unused by the
        meshes, or a lift of the map at the apertures, `_lifts_map`, under
        `LIFT_FRACTION` of its error or under `LIFT_FLUX` of their sky
        noise); ``'covered'`` where the discs cover every pixel the meshes
        used.
    """
    from .maps import _without_sources

    shape = record.level.shape
    if (tuple(frame.shape) != shape
            or not same_sample(frame.data, record.sample)):
        return None
    free = record.usable & ~record.sources
    if record.apertures is not None:
        free &= ~record.apertures
    n_free = int(np.count_nonzero(free))
    ys, xs, own, largest = aperture_pixels(apertures, shape)
    used = free[ys, xs]
    if not np.any(used & own):
        return None
    if n_free - np.count_nonzero(used) < MIN_LEFT_FRACTION * n_free:
        ys, xs, own, largest = aperture_pixels(apertures, shape,
                                               growth=1.0)
        used = free[ys, xs]
    if np.count_nonzero(used) >= n_free:
        return 'covered'
    pixels = np.asarray(frame.data, dtype=float)
    value = np.asarray(value, dtype=float)
    if not _lifts_map(record, pixels, value, error_on_mean, rms,
                      (ys, xs, own, used), largest):
        return None
    discs = np.zeros(shape, dtype=bool)
    discs[ys, xs] = True
    with warnings.catch_warnings():
        # what the map said of this frame when it was made
        warnings.simplefilter('ignore', AstropyUserWarning)
        level, rms, error, meta = _without_sources(record, pixels, discs)
    at = ys[own], xs[own]
    n_used = int(np.count_nonzero(used))
    lift = float(np.mean(value[ys[used], xs[used]]
                         - level[ys[used], xs[used]]))
    typical = float(np.median(np.asarray(error_on_mean)[at]))
    n_ap = len(all_positions(apertures))
    meta.update(
        aperture_lift=lift, n_aperture_pixels=n_used,
        aperture_note=(
            f'the Background2D sky was measured again without the {n_ap} '
            f'apertures measured (grown for their wings), as without the '
            f'sources found: {n_used} of its meshes\' pixels held their '
            f'stars\' light, which lifted it by {lift:.4g} per pixel on '
            f'average there, {lift / typical:.2g} times its error'))
    apertures_out = (discs if record.apertures is None
                     else record.apertures | discs)
    return (level, rms, error, meta,
            dataclasses.replace(record, apertures=apertures_out))


def _lifts_map(record, pixels, value, error_on_mean, rms, discs, largest):
    """
    Whether the pixels of the grown discs lift a map enough to measure it
    again, estimated without measuring it: each mesh's lift is the excess
    of the disc pixels it used over the map, over the pixels the mesh
    kept (a mean's response; the clip of photutils' meshes takes out the
    brightest, so this errs towards measuring again). Where it exceeds
    `LIFT_FRACTION` of the map's error at an aperture's own pixels and
    biases the largest aperture's flux by `LIFT_FLUX` of its sky noise,
    as for a whole-frame level (`WholeFrame.lift`).

    ``discs`` is ``(ys, xs, own, used)`` of `aperture_pixels`, ``used``
    True where the meshes used the pixel; ``largest`` the largest
    aperture's area.
    """
    ys, xs, own, used = discs
    (by, bx), nx = record.meshes.box_size, record.level.shape[1]
    mx = -(-nx // bx)
    mesh = (ys // by) * mx + xs // bx
    n_kept = np.maximum(record.meshes.n_pixels.ravel(), 1.0)
    excess = np.bincount(mesh[used], weights=(pixels - value)[ys[used],
                                                              xs[used]],
                         minlength=n_kept.size) / n_kept
    lift = np.abs(excess[mesh[own]])
    at = ys[own], xs[own]
    with np.errstate(invalid='ignore', divide='ignore'):
        moved = lift > LIFT_FRACTION * np.asarray(error_on_mean)[at]
        felt = lift * math.sqrt(largest) > LIFT_FLUX * np.asarray(rms)[at]
    return bool(np.any(moved & felt))
