#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
A whole real-frame pipeline, stage by stage, against SEP.

One run prints one table: on a 4096 x 4096 float32 frame with 20,000 stars
(sky 1000 ADU, gain 2, PSF sigma 1.8 px), each stage's time as a ratio to
SEP's equivalent (and to one ``numpy.sum`` over the frame, the memory
limit), and its peak extra memory (tracemalloc) as a fraction of the
frame:

========  ==========================================  =======================
stage     ccdphot_ext                                 SEP
========  ==========================================  =======================
sky       ``SkyEstimate.from_image`` (sources masked)  ``sep.Background``
sky 8k    the same on an 8192 x 8192 float32 frame    ``sep.Background``
find      ``find_stars`` (5 sigma)                    ``sep.extract`` (5 sigma)
circles   ``photometer``, ``CircularAperture`` r = 5  ``sum_circle(subpix=0)``
annuli    ``SkyEstimate.from_annulus`` 8-14, exclude  ``sum_circle(bkgann=)``
pipeline  sky, find, annuli, circles                  Background, extract,
                                                      ``sum_circle(bkgann=)``
========  ==========================================  =======================

Usage::

    python benchmarks/bench_pipeline.py [--size 4096] [--n-stars 20000]
        [--repeat 3] [--no-8k] [--seed 1] [--only STAGE ...] [--quick]

``--quick`` runs a 2048 x 2048 frame with 5,000 stars, once, without the
8192 x 8192 sky (a few seconds). Times are the fastest of ``--repeat``
runs of each command, the two commands of a stage interleaved so that they
see the same machine load (the load average is printed). Peak memory is
given as a fraction of the frame's float64 size (twice its float32 size).
Tests assert no timing; this is a report.
"""

import argparse
import os
import time
import tracemalloc
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import SkyEstimate, find_stars, photometer
from ccdphot_ext.datasets.sample import simulate_frame

try:
    import sep
except ImportError:  # pragma: no cover - the reference is required
    raise SystemExit('bench_pipeline needs SEP (pip install sep)') from None

R_CIRCLE = 5.0
ANNULUS = (8.0, 14.0)


def make_frame(size, n_stars, seed):
    """A float32 star field and the true positions."""
    rng = np.random.default_rng(seed)
    stars = {'x': rng.uniform(5, size - 5, n_stars),
             'y': rng.uniform(5, size - 5, n_stars),
             'flux': 10 ** rng.uniform(3.0, 5.0, n_stars)}
    data, _, _ = simulate_frame((size, size), 1000.0, stars, gain=2.0,
                                read_noise=5.0, seed=rng)
    return (np.ascontiguousarray(data, dtype=np.float32),
            np.column_stack([stars['x'], stars['y']]))


def best(func, repeat):
    """Fastest wall time of ``repeat`` calls, and the last result."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return min(times), out


def peak_memory(func):
    """Peak extra memory (bytes) of one call, by tracemalloc."""
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def stages(frame, xy, sky_ref):
    """``{name: (ours, sep's)}`` callables on this frame."""
    data = frame
    ann = CircularAnnulus(xy, *ANNULUS)
    circles = CircularAperture(xy, R_CIRCLE)

    def sep_bkg():
        return sep.Background(data)

    def sep_extract():
        bkg = sep.Background(data)
        return sep.extract(data - bkg.back(), 5.0, err=bkg.globalrms)

    def sep_circles():
        return sep.sum_circle(data, xy[:, 0], xy[:, 1], R_CIRCLE, subpix=0)

    def sep_annuli():
        return sep.sum_circle(data, xy[:, 0], xy[:, 1], R_CIRCLE,
                              bkgann=ANNULUS, subpix=0)

    def sep_pipeline():
        bkg = sep.Background(data)
        sub = data - bkg.back()
        objs = sep.extract(sub, 5.0, err=bkg.globalrms)
        return sep.sum_circle(data, objs['x'], objs['y'], R_CIRCLE,
                              bkgann=ANNULUS, subpix=0)

    def our_pipeline():
        sky = SkyEstimate.from_image(data)
        found = find_stars(data, sky, n_sigma=5)
        pos = np.column_stack([found['x_center'], found['y_center']])
        aps = CircularAperture(pos, R_CIRCLE)
        local = SkyEstimate.from_annulus(data, CircularAnnulus(pos, *ANNULUS),
                                         exclude=aps)
        return photometer(data, aps, local)

    return {
        'sky': (lambda: SkyEstimate.from_image(data), sep_bkg),
        'find': (lambda: find_stars(data, sky_ref, n_sigma=5), sep_extract),
        'circles': (lambda: photometer(data, circles, sky_ref), sep_circles),
        'annuli': (lambda: SkyEstimate.from_annulus(data, ann,
                                                    exclude=circles),
                   sep_annuli),
        'pipeline': (our_pipeline, sep_pipeline),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
    parser.add_argument('--size', type=int, default=4096)
    parser.add_argument('--n-stars', type=int, default=20000)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--no-8k', action='store_true',
                        help='skip the 8192 x 8192 global sky')
    parser.add_argument('--only', nargs='*', default=None,
                        help='stages to run (default: all)')
    parser.add_argument('--quick', action='store_true',
                        help='2048 x 2048, 5000 stars, one run, no 8k sky')
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.n_stars, args.repeat, args.no_8k = 2048, 5000, 1, True
    warnings.simplefilter('ignore', AstropyUserWarning)
    frame, xy = make_frame(args.size, args.n_stars, args.seed)
    frame_bytes = frame.nbytes
    t_sum, _ = best(lambda: np.sum(frame), 5)
    sky_ref = SkyEstimate.from_image(frame)
    print(f'frame {args.size} x {args.size} float32 ({frame_bytes / 2**20:.0f}'
          f' MiB), {args.n_stars} stars; numpy.sum {t_sum * 1e3:.1f} ms; '
          f'load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs')
    print(f'{"stage":9} {"ours [s]":>9} {"SEP [s]":>9} {"ours/SEP":>9} '
          f'{"/np.sum":>8} {"peak mem/frame64":>17}')
    todo = stages(frame, xy, sky_ref)
    if args.only:
        todo = {k: v for k, v in todo.items() if k in args.only}
    for name, (ours, theirs) in todo.items():
        t_ours, t_sep = [], []
        for _ in range(args.repeat):  # interleaved: the same load for both
            t_ours.append(best(ours, 1)[0])
            t_sep.append(best(theirs, 1)[0])
        mem = peak_memory(ours)
        print(f'{name:9} {min(t_ours):9.3f} {min(t_sep):9.3f} '
              f'{min(t_ours) / min(t_sep):9.2f} {min(t_ours) / t_sum:8.0f} '
              f'{mem / (2 * frame_bytes):17.2f}')
    if not args.no_8k and (not args.only or 'sky8k' in args.only):
        del frame, todo
        big = np.random.default_rng(args.seed).normal(
            1000.0, 20.0, (8192, 8192)).astype(np.float32)
        t_ours, t_sep = [], []
        for _ in range(args.repeat):
            t_ours.append(best(lambda: SkyEstimate.from_image(big), 1)[0])
            t_sep.append(best(lambda: sep.Background(big), 1)[0])
        mem = peak_memory(lambda: SkyEstimate.from_image(big))
        t_sum8, _ = best(lambda: np.sum(big), 3)
        print(f'{"sky 8k":9} {min(t_ours):9.3f} {min(t_sep):9.3f} '
              f'{min(t_ours) / min(t_sep):9.2f} '
              f'{min(t_ours) / t_sum8:8.0f} {mem / (2 * big.nbytes):17.2f}')
    print(f'load average {os.getloadavg()[0]:.2f} at the end')


if __name__ == '__main__':
    main()
