#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
Benchmark of `ccdphot_ext.photometer` on many pixel-aligned boxes.

One run prints one table: the time of `photometer` on 10,000 pixel-aligned
20x20 boxes of a 4096x4096 float64 frame holding a few hundred NaN and
saturated pixels (full budget, every flag), as a ratio to one `numpy.sum`
over the frame, to photutils' exact rectangles and to SEP's ``sum_circle``
on as many circles of equal area (r = 20/sqrt(pi)); the same with a
2-sigma threshold mask; and the peak extra memory (tracemalloc).

A second table times `photometer` on 10,000 exact circles (photutils'
`~photutils.aperture.CircularAperture`, r = 5 and 11.3, centred on the
stars at sub-pixel positions, some off the edges) on the same frame against
SEP's ``sum_circle(subpix=0)`` (exact overlaps) with ``err``, ``gain`` and
the NaN mask, photutils' ``aperture_photometry(method='exact')`` and one
``numpy.sum``; ``--only boxes`` or ``--only circles`` runs one table.

Usage::

    python benchmarks/bench_photometer.py [--n-boxes 10000] [--size 4096]
        [--repeat 15] [--photutils-subset 200] [--seed 1]
        [--only boxes|circles]

Times are medians over ``--repeat`` runs, interleaved with the
``numpy.sum`` reference so that both see the same machine load. photutils
is timed on ``--photutils-subset`` apertures and scaled per aperture (its
cost is linear in the number of apertures).
"""

import argparse
import math
import os
import platform
import sys
import time
import tracemalloc
import warnings

import numpy as np
import photutils
from astropy.table import Table
from photutils.aperture import (
    CircularAperture,
    RectangularAperture,
    aperture_photometry,
)

from ccdphot_ext import (
    BoxAperture,
    DetectorParameters,
    SigmaThreshold,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.datasets.sample import simulate_frame

try:
    import sep
except ImportError:  # pragma: no cover - optional reference
    sep = None

GAIN = 2.0
SATURATION = 60000.0


def make_frame(size, n_boxes, seed):
    """A noisy star field, its box corners and a few hundred bad pixels."""
    rng = np.random.default_rng(seed)
    # box corners: some boxes run off the edges (flag 1)
    y0 = rng.integers(-8, size - 12, n_boxes)
    x0 = rng.integers(-8, size - 12, n_boxes)
    stars = {'x': x0 + 9.5 + rng.uniform(-1, 1, n_boxes),
             'y': y0 + 9.5 + rng.uniform(-1, 1, n_boxes),
             'flux': 10 ** rng.uniform(2.5, 5.5, n_boxes)}
    data, sigma, _ = simulate_frame((size, size), 1000.0, stars, gain=GAIN,
                                    read_noise=5.0, saturation=SATURATION,
                                    seed=rng)
    del sigma
    bad = rng.choice(data.size, 600, replace=False)
    data.flat[bad[:300]] = np.nan          # a few hundred NaN pixels
    data.flat[bad[300:]] = SATURATION       # and saturated ones
    return data, x0, y0


def timed(func, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return times


def interleaved(funcs, repeat):
    """Times of each function, run in turn ``repeat`` times."""
    times = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            t0 = time.perf_counter()
            func()
            times[name].append(time.perf_counter() - t0)
    return times


def peak_memory(func):
    """Peak bytes allocated (tracemalloc) while ``func`` runs."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        func()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--n-boxes', type=int, default=10000)
    parser.add_argument('--size', type=int, default=4096)
    parser.add_argument('--repeat', type=int, default=21)
    parser.add_argument('--photutils-subset', type=int, default=200)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--only', choices=('boxes', 'circles'))
    args = parser.parse_args(argv)
    if args.only == 'circles':
        return circles(args)

    load_before = os.getloadavg()
    data, x0, y0 = make_frame(args.size, args.n_boxes, args.seed)
    positions = np.column_stack([x0 + 9.5, y0 + 9.5])
    boxes = BoxAperture(positions, 20, 20)
    assert boxes.is_pixel_aligned
    # the same boxes, moved and resized by fractions of a pixel
    shifted = BoxAperture(positions + [0.23, -0.29], 19.6, 20.3)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "NaN pixels excluded"
        sky = SkyEstimate.from_image(data[::4, ::4])
    kwargs = {'gain': GAIN,
              'detector': DetectorParameters(saturation=SATURATION)}
    thr = SigmaThreshold(2.0, selection='pixel')
    smooth = SigmaThreshold(2.0)
    cases = {
        'boxes': lambda: photometer(data, boxes, sky, **kwargs),
        'boxes + 2-sigma mask': lambda: photometer(data, boxes, sky,
                                                   threshold=thr, **kwargs),
        'boxes + smoothed mask': lambda: photometer(
            data, boxes, sky, threshold=smooth, **kwargs),
        'non-integer boxes': lambda: photometer(data, shifted, sky,
                                                **kwargs),
    }
    targets = {'boxes': '<= 3', 'boxes + 2-sigma mask': '<= 6',
               'boxes + smoothed mask': '-',
               'non-integer boxes': '-'}
    tables = {name: run() for name, run in cases.items()}  # warm-up

    # references: photutils on a subset, scaled per aperture
    sub = positions[:args.photutils_subset]
    rects = RectangularAperture(sub, 20, 20)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # photutils: non-finite values
        t_photutils = min(timed(
            lambda: aperture_photometry(data, rects, method='exact'), 3))
    t_photutils *= args.n_boxes / len(sub)
    funcs = {'numpy.sum': lambda: np.sum(data), **cases}
    if sep is not None:
        radius = 20 / math.sqrt(math.pi)
        bad = ~np.isfinite(data)  # given to SEP, not timed

        def run_sep():
            return sep.sum_circle(data, positions[:, 0], positions[:, 1],
                                  radius, err=float(sky.std), gain=GAIN,
                                  mask=bad)
        funcs['sep.sum_circle'] = run_sep
    times = interleaved(funcs, args.repeat)
    med = {name: float(np.median(t)) for name, t in times.items()}
    best = {name: float(np.min(t)) for name, t in times.items()}
    mem = {name: peak_memory(run) for name, run in cases.items()}
    load_after = os.getloadavg()

    rows = []
    for name in cases:
        flags = np.bitwise_or.reduce(np.asarray(tables[name]['flags']))
        rows.append({
            'case': name,
            'ms': 1e3 * med[name],
            'x numpy.sum': med[name] / med['numpy.sum'],
            '(best)': best[name] / best['numpy.sum'],
            'target': targets[name],
            'photutils exact / us': t_photutils / med[name],
            'sep / us': (med['sep.sum_circle'] / med[name]
                         if sep is not None else math.nan),
            'peak MiB': mem[name] / 2 ** 20,
            'peak / frame': mem[name] / data.nbytes,
            'flags seen': ','.join(str(b) for b in (1, 2, 4, 8, 16, 32)
                                   if flags & b),
        })
    table = Table(rows)
    for col in ('ms', 'x numpy.sum', '(best)', 'photutils exact / us',
                'sep / us', 'peak MiB', 'peak / frame'):
        table[col].format = '.3g'
    print(f'# photometer on {args.n_boxes} boxes of 20x20 pixels on a '
          f'{args.size}x{args.size} float64 frame '
          f'({data.nbytes / 2 ** 20:.0f} MiB) with '
          f'{int(np.isnan(data).sum())} NaN and '
          f'{int((data >= SATURATION).sum())} saturated pixels; gain, '
          'saturation, full budget and every flag')
    print(f'# numpy.sum over the frame: {1e3 * med["numpy.sum"]:.2f} ms '
          f'(median of {args.repeat}, interleaved with the cases); '
          f'photutils exact rectangles: {1e3 * t_photutils:.0f} ms '
          f'({len(sub)} timed, scaled); '
          + (f'sep.sum_circle (r = 20/sqrt(pi), subpix=5): '
             f'{1e3 * med["sep.sum_circle"]:.1f} ms'
             if sep is not None else 'sep not installed'))
    print(f'# python {platform.python_version()}, numpy {np.__version__}, '
          f'photutils {photutils.__version__}, '
          f'sep {getattr(sep, "__version__", "-")}, {platform.machine()}, '
          f'{os.cpu_count()} CPUs, load average before '
          f'{load_before[0]:.2f}, after {load_after[0]:.2f}')
    table.pprint(max_width=-1, max_lines=-1)
    if args.only is None:
        print()
        circles(args, data=data, positions=positions, sky=sky)
    return table


#: The circles' radii and their target against SEP.
RADII = (5.0, 11.3)


def circles(args, *, data=None, positions=None, sky=None):
    """The circles' table: photutils' exact circles through `photometer`
    against SEP's exact ``sum_circle``, photutils and ``numpy.sum``."""
    load_before = os.getloadavg()
    if data is None:
        data, x0, y0 = make_frame(args.size, args.n_boxes, args.seed)
        positions = np.column_stack([x0 + 9.5, y0 + 9.5])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            sky = SkyEstimate.from_image(data[::4, ::4])
    rng = np.random.default_rng(args.seed + 1)
    centres = positions + rng.uniform(-0.5, 0.5, positions.shape)
    bad = ~np.isfinite(data)  # given to SEP, not timed
    kwargs = {'gain': GAIN,
              'detector': DetectorParameters(saturation=SATURATION)}
    funcs, tables, t_photutils = {'numpy.sum': lambda: np.sum(data)}, {}, {}
    for r in RADII:
        ap = CircularAperture(centres, r)
        funcs[f'circles r={r}'] = (
            lambda ap=ap: photometer(data, ap, sky, **kwargs))
        funcs[f'sep r={r}'] = (
            lambda r=r: sep.sum_circle(data, centres[:, 0], centres[:, 1], r,
                                       subpix=0, err=float(sky.std),
                                       gain=GAIN, mask=bad))
        tables[r] = funcs[f'circles r={r}']()  # warm-up
        sub = CircularAperture(centres[:args.photutils_subset], r)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # photutils: non-finite values
            t_photutils[r] = min(timed(
                lambda sub=sub: aperture_photometry(data, sub,
                                                    method='exact'), 3))
        t_photutils[r] *= len(centres) / len(sub)
    times = interleaved(funcs, args.repeat)
    med = {name: float(np.median(t)) for name, t in times.items()}
    best = {name: float(np.min(t)) for name, t in times.items()}
    rows = []
    for r in RADII:
        name = f'circles r={r}'
        flags = np.bitwise_or.reduce(np.asarray(tables[r]['flags']))
        mem = peak_memory(funcs[name])
        rows.append({
            'case': name, 'ms': 1e3 * med[name],
            'x sep': med[name] / med[f'sep r={r}'],
            '(best)': best[name] / best[f'sep r={r}'], 'target': '<= 1.5',
            'sep ms': 1e3 * med[f'sep r={r}'],
            'x numpy.sum': med[name] / med['numpy.sum'],
            'photutils / us': t_photutils[r] / med[name],
            'peak / frame': mem / data.nbytes,
            'flags seen': ','.join(str(b) for b in (1, 2, 4, 8)
                                   if flags & b)})
    table = Table(rows)
    for col in ('ms', 'x sep', '(best)', 'sep ms', 'x numpy.sum',
                'photutils / us', 'peak / frame'):
        table[col].format = '.3g'
    load_after = os.getloadavg()
    print(f'# photometer on {len(centres)} exact circles (CircularAperture) '
          f'on the same {args.size}x{args.size} float64 frame; gain, '
          'saturation, full budget and every flag; against '
          'sep.sum_circle(subpix=0, err=, gain=, mask=) on the same '
          f'centres; numpy.sum {1e3 * med["numpy.sum"]:.2f} ms (median of '
          f'{args.repeat}, interleaved); photutils exact circles timed on '
          f'{args.photutils_subset} and scaled; load average before '
          f'{load_before[0]:.2f}, after {load_after[0]:.2f}')
    table.pprint(max_width=-1, max_lines=-1)
    return table


if __name__ == '__main__':
    main()
    sys.exit(0)
