#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
A whole real-frame pipeline, stage by stage, against SEP.

One run prints one table: on a 4096 x 4096 float32 frame with 20,000 stars
(sky 1000 ADU, gain 2, PSF sigma 1.8 px), each stage's time as a ratio to
SEP's equivalent, with its target, and its peak extra memory (tracemalloc)
as a fraction of the frame's float64 size:

===============  ==========================================  ==============
stage            ccdphot_ext                                 SEP
===============  ==========================================  ==============
sky              ``SkyEstimate.from_image`` (sources masked)  ``Background``
find             ``find_stars`` (5 sigma)                    ``extract``
annulus+circles  ``SkyEstimate.from_annulus`` 8-14 (circles  ``sum_circle``
                 excluded) and ``photometer`` on r = 5       with ``bkgann``
                 circles, gain, full budget
circles 10k      ``photometer`` on 10,000 r = 5 circles,     ``sum_circle``
                 gain, full budget and table                 ``(subpix=0)``
pipeline         sky, find, annulus sky, circles (of the     Background,
                 stars found)                                extract,
                                                             sum_circle
sky 8k           ``SkyEstimate.from_image``, 8192 x 8192     ``Background``
===============  ==========================================  ==============

SEP's photometry is ``subpix=0`` (exact overlaps), with ``err`` and
``gain`` where ours has the full budget. Each row also gives our time in
units of one `numpy.sum` over the frame (timed in the same rounds) and
how many times faster we are than photutils' counterpart
(``Background2D``; ``DAOStarFinder`` on an eighth of the rows;
``ApertureStats`` sigma-clipped annuli and ``aperture_photometry``
exact circles on 500 positions; times scaled to the whole stage, two
rounds). A last line gives the peak resident memory of ``ccdphot
measure`` on an 8192 x 8192 float32 frame with 50,000 boxes of 20 x 20
(a process of its own) as a fraction of the frame's float64 size.

Usage::

    python benchmarks/bench_pipeline.py [--size 4096] [--n-stars 20000]
        [--repeat 5] [--no-8k] [--seed 1] [--only STAGE ...] [--quick]
        [--no-photutils] [--memory-size 8192] [--memory-boxes 50000]
        [--profile]

``--profile`` prints instead where our pipeline's CPU time goes: each
step's CPU time per call of the pipeline (fastest of ``--repeat``), the
steps being functions of the package timed by wrappers (a step missing
from this version of the package is left out; nested steps are included
in their callers).

``--quick`` runs a 2048 x 2048 frame with 5,000 stars, three times, without
the 8192 x 8192 sky (a few seconds). Each stage runs ours and SEP's
alternately ``--repeat`` times (each pair sees the same machine load); the
table gives the ratio of the fastest runs (``best``, the judged figure), the
median of the pair-by-pair ratios and the ratio of the CPU times
(``time.process_time``, fastest of each; less sensitive to other
processes on a shared machine), with the load average before and after.
Tests assert no timing; this is a report.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings

import numpy as np
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate, find_stars, photometer
from ccdphot_ext.datasets.sample import simulate_frame

try:
    import sep
except ImportError:  # pragma: no cover - the reference is required
    raise SystemExit('bench_pipeline needs SEP (pip install sep)') from None

GAIN = 2.0
R_CIRCLE = 5.0
ANNULUS = (8.0, 14.0)
#: stage: target ratio to SEP (of the fastest runs)
TARGETS = {'sky': 1.5, 'find': 1.5, 'annulus+circles': 1.5,
           'circles 10k': 1.2, 'pipeline': 1.0, 'sky 8k': 1.0}
#: apertures photutils measures (its time is scaled to all of them: its
#: cost is linear in their number)
PHOTUTILS_SUBSET = 500
#: ``ccdphot measure``: peak resident memory over the float64 frame
MEMORY_TARGET = 2.5
#: run a command and print its peak resident memory (KiB)
RUN_AND_REPORT = ('import resource, subprocess, sys; '
                  'subprocess.run(sys.argv[1:], check=True, '
                  'stdout=subprocess.DEVNULL); '
                  'print(resource.getrusage(resource.RUSAGE_CHILDREN)'
                  '.ru_maxrss)')


def make_frame(size, n_stars, seed):
    """A float32 star field and the true positions."""
    rng = np.random.default_rng(seed)
    stars = {'x': rng.uniform(5, size - 5, n_stars),
             'y': rng.uniform(5, size - 5, n_stars),
             'flux': 10 ** rng.uniform(3.0, 5.0, n_stars)}
    data, _, _ = simulate_frame((size, size), 1000.0, stars, gain=GAIN,
                                read_noise=5.0, seed=rng)
    return (np.ascontiguousarray(data, dtype=np.float32),
            np.column_stack([stars['x'], stars['y']]))


def run(func):
    """Wall and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def peak_memory(func):
    """Peak extra memory (bytes) of one call, by tracemalloc."""
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def ours_photometry(data, xy, sky=None):
    """The annulus sky around circles at ``xy`` and their photometry."""
    circles = CircularAperture(xy, R_CIRCLE)
    if sky is None:
        sky = SkyEstimate.from_annulus(data, CircularAnnulus(xy, *ANNULUS),
                                       exclude=circles)
    return photometer(data, circles, sky, gain=GAIN)


def sep_photometry(data, x, y, err, *, bkgann=ANNULUS):
    return sep.sum_circle(data, x, y, R_CIRCLE, bkgann=bkgann, subpix=0,
                          err=err, gain=GAIN)


def photutils_stages(data, xy, sky_ref):
    """``{name: (call, scale)}``: photutils' counterpart of a stage on a
    part of it (``PHOTUTILS_SUBSET`` apertures, an eighth of the rows for
    finding), and the factor that scales its time to the whole stage."""
    from astropy.stats import SigmaClip
    from photutils.detection import DAOStarFinder

    sub = xy[:PHOTUTILS_SUBSET]
    rows = data[:data.shape[0] // 8]
    std = float(sky_ref.std)

    def sky():
        return Background2D(data, 64, filter_size=3)

    def find():
        finder = DAOStarFinder(5.0 * std, 2.355 * 1.8)
        return finder(rows - float(sky_ref.value))

    def annulus_circles():
        annuli = CircularAnnulus(sub, *ANNULUS)
        level = ApertureStats(data, annuli, sigma_clip=SigmaClip(3.0)).mean
        table = aperture_photometry(data, CircularAperture(sub, R_CIRCLE),
                                    method='exact')
        return table['aperture_sum'] - level * np.pi * R_CIRCLE ** 2

    def circles():
        return aperture_photometry(
            data, CircularAperture(sub, R_CIRCLE), method='exact',
            error=np.broadcast_to(np.float32(std), data.shape))

    return {'sky': (sky, 1.0), 'find': (find, 8.0),
            'annulus+circles': (annulus_circles, len(xy) / len(sub)),
            'circles 10k': (circles, min(len(xy), 10000) / len(sub))}


def stages(frame, xy, sky_ref):
    """``{name: (ours, SEP's)}`` callables on this frame."""
    data = frame
    first = xy[:10000]

    def sep_extract():
        bkg = sep.Background(data)
        return sep.extract(data - bkg.back(), 5.0, err=bkg.globalrms)

    def sep_pipeline():
        bkg = sep.Background(data)
        objs = sep.extract(data - bkg.back(), 5.0, err=bkg.globalrms)
        return sep_photometry(data, objs['x'], objs['y'], bkg.globalrms)

    def our_pipeline():
        sky = SkyEstimate.from_image(data)
        found = find_stars(data, sky, n_sigma=5, progress=False)
        pos = np.column_stack([found['x_center'], found['y_center']])
        return ours_photometry(data, pos)

    return {
        'sky': (lambda: SkyEstimate.from_image(data),
                lambda: sep.Background(data)),
        'find': (lambda: find_stars(data, sky_ref, n_sigma=5,
                                    progress=False), sep_extract),
        'annulus+circles': (
            lambda: ours_photometry(data, xy),
            lambda: sep_photometry(data, xy[:, 0], xy[:, 1],
                                   float(sky_ref.std))),
        'circles 10k': (
            lambda: ours_photometry(data, first, sky_ref),
            lambda: sep_photometry(data, first[:, 0], first[:, 1],
                                   float(sky_ref.std), bkgann=None)),
        'pipeline': (our_pipeline, sep_pipeline),
    }


def measure(name, ours, theirs, repeat, frame, photutils=None):
    """One row of the table: ours, SEP's and one `numpy.sum` over the
    frame run in turn ``repeat`` times (photutils' counterpart, when
    given as ``(call, scale)``, in the first two rounds: it is slow)."""
    load = os.getloadavg()[0]
    ours(), theirs()  # warm-up
    pairs, sums, slow = [], [], []
    for k in range(repeat):
        pairs.append((run(ours), run(theirs)))
        sums.append(run(lambda: np.sum(frame))[0])
        if photutils is not None and k < 2:
            slow.append(run(photutils[0])[0] * photutils[1])
    wall_o = np.array([o[0] for o, _ in pairs])
    wall_s = np.array([s[0] for _, s in pairs])
    cpu_o = min(o[1] for o, _ in pairs)
    cpu_s = min(s[1] for _, s in pairs)
    best = wall_o.min() / wall_s.min()
    target = TARGETS[name]
    return {'stage': name, 'ours_s': wall_o.min(), 'sep_s': wall_s.min(),
            'best': best, 'median': float(np.median(wall_o / wall_s)),
            'cpu': cpu_o / cpu_s, 'target': f'<= {target}',
            'met': 'yes' if best <= target else 'no',
            'x_np_sum': wall_o.min() / min(sums),
            'photutils/ours': (min(slow) / wall_o.min() if slow
                               else np.nan),
            'peak/frame64': peak_memory(ours) / (2 * frame.nbytes),
            'load': load}


def measure_memory(size, n_boxes, seed):
    """Peak resident memory of ``ccdphot measure`` (a process of its own)
    on a ``size`` x ``size`` float32 frame with ``n_boxes`` 20 x 20 boxes,
    over the frame's float64 size (a line of report)."""
    from astropy.io import fits

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory(prefix='ccdphot_bench_') as folder:
        image = os.path.join(folder, 'frame.fits')
        data = rng.normal(1000.0, 20.0, (size, size)).astype(np.float32)
        header = fits.Header({'GAIN': GAIN, 'BUNIT': 'adu'})
        fits.PrimaryHDU(data, header).writeto(image)
        del data
        positions = os.path.join(folder, 'positions.ecsv')
        Table({'x': rng.uniform(10, size - 10, n_boxes),
               'y': rng.uniform(10, size - 10, n_boxes)}).write(positions)
        exe = os.path.join(os.path.dirname(sys.executable), 'ccdphot')
        start = time.perf_counter()
        # through a bare interpreter: Linux counts in a child's peak
        # resident memory that of the process it was forked from
        out = subprocess.run(
            [sys.executable, '-S', '-c', RUN_AND_REPORT, exe, 'measure',
             image, '--positions', positions, '--size', '20', '-o',
             os.path.join(folder, 'out.ecsv')],
            check=True, capture_output=True, text=True)
        wall = time.perf_counter() - start
    peak = int(out.stdout.split()[-1]) * 1024  # KiB on Linux
    frame64 = size * size * 8
    return (f'# ccdphot measure, {size} x {size} float32 frame, {n_boxes} '
            f'boxes of 20 x 20: {wall:.1f} s, peak resident memory '
            f'{peak / 2**20:.0f} MiB = {peak / frame64:.2f} x the float64 '
            f'frame ({frame64 / 2**20:.0f} MiB); target <= {MEMORY_TARGET} '
            f'({"met" if peak / frame64 <= MEMORY_TARGET else "not met"})')


#: (module, function or Class.method, label) timed by ``--profile``, in
#: pipeline order
STEPS = [
    ('ccdphot_ext.background.sky', 'SkyEstimate.from_image', 'sky'),
    ('ccdphot_ext.background.globalsky', '_binned', '  block sums'),
    ('ccdphot_ext.background.globalsky', 'source_blocks', '  source mask'),
    ('ccdphot_ext.background.globalsky', 'matched_blocks',
     '  matched filter'),
    ('ccdphot_ext.background.globalsky', '_clip_large', '  clip pass'),
    ('ccdphot_ext.background.globalsky', '_exact', '  clip (all pixels)'),
    ('ccdphot_ext.detection.findstars', 'find_stars', 'find'),
    ('ccdphot_ext.detection.findstars', 'detect_segments', '  detection'),
    ('ccdphot_ext.detection.strips', 'Kernel.apply', '    smoothing'),
    ('ccdphot_ext.detection.findstars', 'segment_moments', '  moments'),
    ('ccdphot_ext.detection.findstars', 'measure_strips',
     '  windowed centroids'),
    ('ccdphot_ext.detection.findstars', 'ring_or_spike',
     '  artifact filter'),
    ('ccdphot_ext.detection.findstars', 'check_box', '  box check'),
    ('ccdphot_ext.background.sky', 'SkyEstimate.from_annulus',
     'annulus sky'),
    ('ccdphot_ext.background.annulus', 'exclusion_map',
     '  exclusion map'),
    ('ccdphot_ext.background.annulus', 'Ring.members',
     '  ring membership'),
    ('ccdphot_ext.background.annulus', '_ChunkArrays.fill',
     '  ring gather'),
    ('ccdphot_ext.background.annulus', '_own_hits',
     '  own-aperture overlap'),
    ('ccdphot_ext.background.annulus', 'summarise_rows',
     '  clipped statistics'),
    ('ccdphot_ext.background.annulus', 'clip_rows', '    sorted clip'),
    ('ccdphot_ext.photometry.table', 'photometer', 'circles'),
    ('ccdphot_ext.photometry.table', 'check_noise', '  noise check'),
    ('ccdphot_ext.photometry.table', '_engine_sums', '  engine sums'),
    ('ccdphot_ext.aperture.circular', 'EllipseShape.weights',
     '    exact weights'),
    ('ccdphot_ext.photometry.table', 'sky_row_flags', '  sky-row flags'),
    ('ccdphot_ext.photometry.table', '_budget_terms', '  budget'),
    ('ccdphot_ext.photometry.table', '_to_table', '  table'),
]


def profile(frame, repeat):
    """CPU seconds per step of our pipeline (`STEPS`), fastest of
    ``repeat`` pipelines."""
    import functools
    import importlib

    spent = {}
    for module_name, qual, label in STEPS:
        owner = importlib.import_module(module_name)
        *path, name = qual.split('.')
        for part in path:
            owner = getattr(owner, part)
        func = owner.__dict__.get(name) if path else getattr(owner, name,
                                                              None)
        if func is None or label in spent:
            continue
        inner = func.__func__ if isinstance(func, classmethod) else func

        def timed(*args, _inner=inner, _label=label, **kwargs):
            start = time.process_time()
            try:
                return _inner(*args, **kwargs)
            finally:
                spent[_label][-1] += time.process_time() - start

        wrapped = functools.wraps(inner)(timed)
        setattr(owner, name, classmethod(wrapped)
                if isinstance(func, classmethod) else wrapped)
        spent[label] = []
    modules = {name: importlib.import_module(name) for name in (
        'ccdphot_ext.detection.findstars', 'ccdphot_ext.photometry.table')}

    def pipeline():  # the functions looked up now, wrapped
        sky = SkyEstimate.from_image(frame)
        found = modules['ccdphot_ext.detection.findstars'].find_stars(
            frame, sky, n_sigma=5, progress=False)
        pos = np.column_stack([found['x_center'], found['y_center']])
        circles = CircularAperture(pos, R_CIRCLE)
        local = SkyEstimate.from_annulus(
            frame, CircularAnnulus(pos, *ANNULUS), exclude=circles)
        modules['ccdphot_ext.photometry.table'].photometer(
            frame, circles, local, gain=GAIN)

    totals = []
    for _ in range(repeat):
        for values in spent.values():
            values.append(0.0)
        totals.append(run(pipeline)[1])
    best = int(np.argmin(totals))
    print(f'# our pipeline: {totals[best]:.3f} s CPU (fastest of {repeat}),'
          f' load average {os.getloadavg()[0]:.2f}; steps in that run:')
    for label, values in spent.items():
        print(f'{label:24s} {values[best]:7.3f} s '
              f'{100 * values[best] / totals[best]:5.1f}%')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[1])
    parser.add_argument('--size', type=int, default=4096)
    parser.add_argument('--n-stars', type=int, default=20000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--no-8k', action='store_true',
                        help='skip the 8192 x 8192 global sky')
    parser.add_argument('--only', nargs='*', default=None,
                        help='stages to run (default: all)')
    parser.add_argument('--quick', action='store_true',
                        help='2048 x 2048, 5000 stars, 3 runs, no 8k sky, '
                             'memory of 5000 boxes on 2048 x 2048')
    parser.add_argument('--no-photutils', action='store_true',
                        help='leave out photutils\' counterparts')
    parser.add_argument('--memory-size', type=int, default=8192,
                        help='frame side for the memory of ccdphot measure')
    parser.add_argument('--memory-boxes', type=int, default=50000,
                        help='boxes for the memory of ccdphot measure (0: '
                             'not measured)')
    parser.add_argument('--profile', action='store_true',
                        help='where our pipeline\'s CPU time goes')
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.n_stars, args.repeat, args.no_8k = 2048, 5000, 3, True
        args.memory_size, args.memory_boxes = 2048, 5000
    warnings.simplefilter('ignore', AstropyUserWarning)
    if args.profile:
        return profile(make_frame(args.size, args.n_stars, args.seed)[0],
                       args.repeat)
    memory = ('# ccdphot measure: not measured' if not args.memory_boxes
              else measure_memory(args.memory_size, args.memory_boxes,
                                  args.seed))
    frame, xy = make_frame(args.size, args.n_stars, args.seed)
    sky_ref = SkyEstimate.from_image(frame)
    print(f'# frame {args.size} x {args.size} float32 '
          f'({frame.nbytes / 2**20:.0f} MiB), {args.n_stars} stars; '
          f'{os.cpu_count()} CPUs; load average '
          f'{", ".join(f"{v:.2f}" for v in os.getloadavg())}; fastest of '
          f'{args.repeat} alternating runs per stage')
    rows = []
    todo = stages(frame, xy, sky_ref)
    slow = {} if args.no_photutils else photutils_stages(frame, xy, sky_ref)
    for name, (ours, theirs) in todo.items():
        if args.only and name not in args.only:
            continue
        rows.append(measure(name, ours, theirs, args.repeat, frame,
                            slow.get(name)))
    del frame, todo, slow
    if not args.no_8k and (not args.only or 'sky 8k' in args.only):
        big = np.random.default_rng(args.seed).normal(
            1000.0, 20.0, (8192, 8192)).astype(np.float32)
        rows.append(measure(
            'sky 8k', lambda: SkyEstimate.from_image(big),
            lambda: sep.Background(big), args.repeat, big,
            None if args.no_photutils else
            (lambda: Background2D(big, 64, filter_size=3), 1.0)))
        del big
    table = Table(rows)
    for col, fmt in (('ours_s', '.3f'), ('sep_s', '.3f'), ('best', '.2f'),
                     ('median', '.2f'), ('cpu', '.2f'), ('x_np_sum', '.0f'),
                     ('photutils/ours', '.1f'), ('peak/frame64', '.2f'),
                     ('load', '.1f')):
        table[col].format = fmt
    table.pprint(max_lines=-1, max_width=-1)
    print('# best: ours / SEP of the fastest runs; median: of the ratios '
          'pair by pair; cpu: of the fastest CPU times; x_np_sum: ours / '
          'one numpy.sum over the frame; photutils/ours: photutils\' '
          'counterpart (Background2D, DAOStarFinder, ApertureStats and '
          'aperture_photometry exact, on a part, scaled) over ours; '
          'load: the 1-minute load average when the stage started')
    print(memory)
    print('# load average at the end '
          f'{", ".join(f"{v:.2f}" for v in os.getloadavg())}')
    return table


if __name__ == '__main__':
    main()
