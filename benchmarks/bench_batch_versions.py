#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
The whole ``ccdphot batch`` command of two versions of ccdphot_ext side by
side: serially and on a running 2-worker cluster of its own version.

``--before`` and ``--after`` are two source trees (checkouts with their
compiled extension built); each command runs with ``PYTHONPATH`` set to
its tree, and each tree gets its own running cluster (a ``dask
scheduler`` and two single-threaded ``dask worker`` processes on
127.0.0.1, started with the same ``PYTHONPATH``, warmed up by one
untimed run of the command). The frames are those of
``bench_batch.py`` (``--frames`` frames of ``--size`` x ``--size``
float32 pixels, 500 stars, 15x15 boxes, sigma-clipped sky per frame).

Each round runs the four commands (serial before and after, then the
cluster's before and after), the versions' order swapped every other
round, so that the versions share the machine's load; a busy machine
gives noisy rounds, so compare within rounds. Printed: every run's wall
time, the load average of each round, the median CPU seconds of each
command's process, and for each command its best and median wall time,
the median and each round's ratio to the serial command of the previous
version, then the median ratios after / before of the same round.

Usage::

    python benchmarks/bench_batch_versions.py --before TREE --after TREE
        [--rounds 10] [--frames 40] [--size 1024] [--keep DIR]
"""

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from bench_batch import dask_cluster, write_frames

VERSIONS = ('before', 'after')
MODES = ('serial', 'running 2 workers')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--before', required=True, metavar='TREE')
    parser.add_argument('--after', required=True, metavar='TREE')
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--frames', type=int, default=40)
    parser.add_argument('--size', type=int, default=1024)
    parser.add_argument('--keep', metavar='DIR',
                        help='write the frames here and keep them')
    args = parser.parse_args(argv)
    warnings.simplefilter('ignore', AstropyUserWarning)
    trees = {'before': os.path.abspath(args.before),
             'after': os.path.abspath(args.after)}
    folder = args.keep or tempfile.mkdtemp(prefix='ccdphot_versions_')
    os.makedirs(folder, exist_ok=True)
    try:
        paths, xy = write_frames(folder, args.frames, args.size, 500, 7)
        np.savetxt(os.path.join(folder, 'positions.txt'), xy,
                   header='x y', comments='')
        with open(os.path.join(folder, 'frames.txt'), 'w') as f:
            f.write('\n'.join(paths) + '\n')
        with contextlib.ExitStack() as stack:
            addresses = {v: stack.enter_context(dask_cluster(
                2, env={'PYTHONPATH': trees[v], 'MPLBACKEND': 'Agg'}))
                         for v in VERSIONS}
            for v in VERSIONS:  # warm up each cluster once
                _run(folder, trees[v], addresses[v])
            walls, cpus = _rounds(folder, trees, addresses, args.rounds)
        _report(walls, cpus)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _run(folder, tree, address=None):
    """Wall and CPU seconds of one ``ccdphot batch`` command of ``tree``
    (on the cluster at ``address``, or serially)."""
    exe = os.path.join(os.path.dirname(sys.executable), 'ccdphot')
    out = os.path.join(folder, 'out.ecsv')
    argv = [exe, 'batch', '--frame-list', os.path.join(folder, 'frames.txt'),
            '--positions', os.path.join(folder, 'positions.txt'),
            '--size', '15', '-q', '-o', out]
    if address is not None:
        argv += ['--scheduler', address]
    env = {**os.environ, 'PYTHONPATH': tree, 'MPLBACKEND': 'Agg'}
    cpu, start = _children_cpu(), time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    os.remove(out)
    return wall, _children_cpu() - cpu


def _rounds(folder, trees, addresses, n):
    walls = {(v, m): [] for m in MODES for v in VERSIONS}
    cpus = {key: [] for key in walls}
    print(f'# load average before: {os.getloadavg()}')
    for r in range(n):
        order = VERSIONS if r % 2 == 0 else VERSIONS[::-1]
        for mode in MODES:
            for v in order:
                address = addresses[v] if mode != 'serial' else None
                wall, cpu = _run(folder, trees[v], address)
                walls[(v, mode)].append(wall)
                cpus[(v, mode)].append(cpu)
        print(f'# round {r}: ' + ' '.join(
            f'{m} ({v}) {w[-1]:.2f}' for (v, m), w in walls.items())
            + f'; load average {os.getloadavg()[0]:.2f}', flush=True)
    print(f'# load average after: {os.getloadavg()}')
    return walls, cpus


def _report(walls, cpus):
    base = np.array(walls[('before', 'serial')])
    print(f'{"command":28s} {"best_s":>6s} {"median_s":>8s} {"cpu_s":>6s} '
          f'{"median_vs_serial":>16s}  each round vs serial (before)')
    for (v, mode), w in walls.items():
        w = np.array(w)
        print(f'{mode + " (" + v + ")":28s} {w.min():6.2f} '
              f'{np.median(w):8.2f} {np.median(cpus[(v, mode)]):6.2f} '
              f'{np.median(w / base):16.3f}  '
              + ' '.join(f'{x:.2f}' for x in w / base))
    for mode in MODES:
        ratio = (np.array(walls[('after', mode)])
                 / np.array(walls[('before', mode)]))
        print(f'# {mode}: after / before {np.median(ratio):.3f} median, '
              f'faster in {int((ratio < 1).sum())} of {len(ratio)} rounds')


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == '__main__':
    sys.exit(main())
