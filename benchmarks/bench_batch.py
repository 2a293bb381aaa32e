#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
Throughput of `ccdphot_ext.batch.frames.photometer_frames` serially and on a Dask
``LocalCluster`` with 1 and 2 worker processes.

The script writes ``--frames`` FITS frames of ``--size`` x ``--size``
float32 pixels holding ``--stars`` stars (a drifting field, sky and noise
changing from frame to frame) into a temporary folder, then measures the
same 15x15 boxes on every frame with a per-frame sigma-clipped sky and
prints one table: wall time and frames per second for each execution mode,
and the speed-up over the serial run.

The clusters are those ``photometer_frames(workers=N)`` starts (single-
threaded worker processes). Their start-up (and the import of ccdphot_ext
on each worker) is timed apart and not counted in the throughput: a long
batch pays it once. Each cluster's results are checked to equal the serial
run's.

Usage::

    python benchmarks/bench_batch.py [--frames 40] [--size 1024]
        [--stars 500] [--workers 1,2] [--recenter] [--repeat 1] [--keep DIR]
"""

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ccdphot_ext import BoxAperture
from ccdphot_ext.batch.frames import _open_client, photometer_frames
from ccdphot_ext.datasets.sample import simulate_frame


def write_frames(folder, n_frames, size, n_stars, seed):
    """Write the frames; return their paths and the nominal positions."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(20, size - 20, n_stars)
    y = rng.uniform(20, size - 20, n_stars)
    flux = 10 ** rng.uniform(3.0, 5.0, n_stars)
    paths = []
    for k in range(n_frames):
        dx, dy = rng.normal(0, 0.5, 2)
        data, _, _ = simulate_frame((size, size), 800 + 5 * k,
                                    {'x': x + dx, 'y': y + dy, 'flux': flux},
                                    gain=2.0, read_noise=6.0, seed=rng)
        header = fits.Header({'GAIN': 2.0, 'EXPTIME': 60.0, 'BUNIT': 'adu',
                              'MJD-OBS': 60500.0 + k * 70 / 86400})
        path = os.path.join(folder, f'frame{k:04d}.fits')
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(path)
        paths.append(path)
    return paths, np.c_[x, y]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--stars', type=int, default=500)
    parser.add_argument('--workers', default='1,2',
                        help='comma-separated worker counts (default 1,2)')
    parser.add_argument('--recenter', action='store_true',
                        help='also re-centre every aperture on every frame')
    parser.add_argument('--repeat', type=int, default=1,
                        help='runs per mode, interleaved; the fastest is '
                             'reported')
    parser.add_argument('--keep', metavar='DIR',
                        help='write the frames here and keep them')
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args(argv)
    worker_counts = [int(w) for w in args.workers.split(',') if w]

    folder = args.keep or tempfile.mkdtemp(prefix='ccdphot_bench_')
    os.makedirs(folder, exist_ok=True)
    try:
        t_write, (paths, xy) = timed(lambda: write_frames(
            folder, args.frames, args.size, args.stars, args.seed))
        boxes = BoxAperture(xy, 15, 15)
        kwargs = {'recenter': args.recenter, 'progress': False}
        print(f'# {args.frames} frames of {args.size}x{args.size} float32, '
              f'{args.stars} stars, 15x15 boxes, sigma-clipped sky per '
              f'frame, recenter={args.recenter}')
        print(f'# frames written in {t_write:.1f} s to {folder}')
        print(f'# python {platform.python_version()}, {os.cpu_count()} '
              f'CPUs, load average before: '
              f'{", ".join(f"{v:.2f}" for v in os.getloadavg())}')

        clusters = {}
        for n in worker_counts:
            t_start, clusters[n] = timed(lambda n=n: _start(n))
            clusters[n] += (t_start,)
        modes = [('serial', None)] + [
            (f'dask, {n} worker{"s" if n > 1 else ""}', n)
            for n in worker_counts]
        best = {}
        serial_table = None
        try:
            # modes interleaved, so that all see the same machine load
            for _ in range(args.repeat):
                for name, n in modes:
                    client = None if n is None else clusters[n][0]
                    cpu0 = _cpu(client)
                    wall, table = timed(lambda c=client: photometer_frames(
                        paths, boxes, client=c, **kwargs))
                    cpu = _cpu(client) - cpu0
                    if n is None:
                        serial_table = table
                    elif not all(np.array_equal(np.asarray(serial_table[c]),
                                                np.asarray(table[c]))
                                 for c in ('aperture_sum',
                                           'aperture_sum_err', 'flags')):
                        raise RuntimeError(f'{name}: results differ from the '
                                           'serial run')
                    if name not in best or wall < best[name][0]:
                        best[name] = (wall, cpu)
        finally:
            # last started, first closed: each restores the log level
            for _client, cleanup, _ in reversed(list(clusters.values())):
                for close in cleanup:
                    close()

        serial_time = best['serial'][0]
        out = Table(rows=[(name, 0.0 if n is None else clusters[n][2],
                           best[name][0], args.frames / best[name][0],
                           serial_time / best[name][0], best[name][1])
                          for name, n in modes],
                    names=('execution', 'startup_s', 'wall_s', 'frames_per_s',
                           'speedup', 'cpu_s'))
        for name, fmt in (('startup_s', '.1f'), ('wall_s', '.2f'),
                          ('frames_per_s', '.2f'), ('speedup', '.2f'),
                          ('cpu_s', '.2f')):
            out[name].format = fmt
        out.pprint(max_lines=-1, max_width=-1)
        print(f'# rows per run: {len(serial_table)}; cpu_s = CPU seconds of '
              'this process and the workers; load average after: '
              f'{", ".join(f"{v:.2f}" for v in os.getloadavg())}')
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu(client):
    """CPU seconds used so far here and on every worker of ``client``."""
    here = _process_cpu()
    if client is None:
        return here
    return here + sum(client.run(_process_cpu).values())


def _start(n):
    """The cluster ``photometer_frames(workers=n)`` starts, imports paid."""
    client, cleanup = _open_client(None, n, None)
    client.run(lambda: __import__('ccdphot_ext.batch.frames'))
    return client, cleanup


if __name__ == '__main__':
    sys.exit(main())
