#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
Throughput of `ccdphot_ext.batch.frames.photometer_frames` serially, with
``workers=N`` (a Dask ``LocalCluster`` started for the call) and on running
Dask clusters of N workers (``scheduler=``), and of the whole ``ccdphot
batch`` command serially and on the running 2-worker cluster.

The script writes ``--frames`` FITS frames of ``--size`` x ``--size``
float32 pixels holding ``--stars`` stars (a drifting field, sky and noise
changing from frame to frame) into a temporary folder, then measures the
same 15x15 boxes on every frame with a per-frame sigma-clipped sky and
prints two tables: for each execution mode the wall time, frames per
second and the time relative to the serial run (then the scaling: frames
per second gained per added worker, a least-squares slope over the worker
counts, local and running); and the whole command's times and frames per
second.

``workers=N`` is timed as a user sees it, start-up of its cluster
included. A running cluster is a ``dask scheduler`` and N single-threaded
``dask worker`` processes on 127.0.0.1, started and warmed up once (a
small batch measured on it) before the timings, as a user keeps one
running. Every mode's results are checked to equal the serial run's.
Modes run in turn, round after round (``--repeat``), so that they share
the machine's load; the load average is printed before and after.

Usage::

    python benchmarks/bench_batch.py [--frames 40] [--size 1024]
        [--stars 500] [--workers 1,2] [--recenter] [--repeat 3]
        [--cli-repeat 3] [--timeline 0] [--keep DIR]

``--workers`` defaults to 1,2 and adds 4 on a machine of 4 CPUs or more.
"""

import argparse
import contextlib
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import BatchExecution, BoxAperture
from ccdphot_ext.batch.frames import photometer_frames
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
    parser.add_argument('--workers', default=None,
                        help='comma-separated worker counts (default 1,2 '
                             'and 4 with 4 CPUs or more)')
    parser.add_argument('--recenter', action='store_true',
                        help='also re-centre every aperture on every frame')
    parser.add_argument('--repeat', type=int, default=3,
                        help='runs per mode, interleaved; the fastest '
                             'time and every run\'s ratio to the serial '
                             'run of its round are reported')
    parser.add_argument('--cli-repeat', type=int, default=3,
                        help='runs of the whole ccdphot batch command per '
                             'mode (0: none)')
    parser.add_argument('--timeline', type=int, default=0, metavar='N',
                        help='runs of the command per mode with a mark at '
                             'each step (default 0: none)')
    parser.add_argument('--keep', metavar='DIR',
                        help='write the frames here and keep them')
    parser.add_argument('--seed', type=int, default=7)
    args = parser.parse_args(argv)
    # the frames' own remarks (a crowded-field warning) are not timings
    warnings.simplefilter('ignore', AstropyUserWarning)
    worker_counts = ([1, 2] + ([4] if (os.cpu_count() or 1) >= 4 else [])
                     if args.workers is None
                     else [int(w) for w in args.workers.split(',') if w])

    folder = args.keep or tempfile.mkdtemp(prefix='ccdphot_bench_')
    os.makedirs(folder, exist_ok=True)
    try:
        t_write, (paths, xy) = timed(lambda: write_frames(
            folder, args.frames, args.size, args.stars, args.seed))
        boxes = BoxAperture(xy, 15, 15)
        kwargs = {'recenter': args.recenter}
        print(f'# {args.frames} frames of {args.size}x{args.size} float32, '
              f'{args.stars} stars, 15x15 boxes, sigma-clipped sky per '
              f'frame, recenter={args.recenter}')
        print(f'# frames written in {t_write:.1f} s to {folder}')
        print(f'# python {platform.python_version()}, {os.cpu_count()} '
              f'CPUs, load average before: {_load()}')
        with contextlib.ExitStack() as stack:
            addresses = {n: stack.enter_context(_running_cluster(n, paths,
                                                                 boxes))
                         for n in worker_counts}
            runs, serial_table = _measure_modes(paths, boxes, kwargs,
                                                worker_counts, addresses,
                                                args.repeat)
            _report(runs, args.frames, worker_counts)
            if args.cli_repeat and 2 in addresses:
                _report_command(folder, paths, xy, addresses[2],
                                args.cli_repeat)
            if args.timeline and 2 in addresses:
                _report_timeline(folder, addresses[2], args.timeline)
        print(f'# rows per run: {len(serial_table)}; wall_s of "workers=N" '
              'includes starting its LocalCluster; cpu_s = CPU seconds of '
              'this process (and of the running cluster\'s workers); load '
              f'average after: {_load()}')
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def _load():
    return ', '.join(f'{v:.2f}' for v in os.getloadavg())


def _measure_modes(paths, boxes, kwargs, worker_counts, addresses,
                   repeat):
    """Every run's (wall, cpu) per mode, modes interleaved to share the
    load; each repeat starts with a serial run, the reference of its
    ratios."""
    modes = [('serial', {})]
    modes += [(f'workers={n} (own cluster)', {'workers': n})
              for n in worker_counts]
    modes += [(f'running cluster, {n} workers', {'scheduler': address})
              for n, address in addresses.items()]
    modes = [(name, BatchExecution(progress=False, **run))
             for name, run in modes]
    runs, serial_table = {name: [] for name, _ in modes}, None
    for _ in range(repeat):
        for name, extra in modes:
            remote = extra.scheduler
            cpu0 = _cpu(remote, before=True)
            wall, table = timed(lambda e=extra: photometer_frames(
                paths, boxes, **kwargs, execution=e))
            cpu = _cpu(remote, before=False) - cpu0
            if serial_table is None:
                serial_table = table
            elif not all(np.array_equal(np.asarray(serial_table[c]),
                                        np.asarray(table[c]))
                         for c in ('aperture_sum', 'aperture_sum_err',
                                   'flags')):
                raise RuntimeError(f'{name}: results differ from the '
                                   'serial run')
            runs[name].append((wall, cpu))
    return runs, serial_table


def _report(runs, n_frames, worker_counts):
    """Fastest run per mode; the ratio to the serial run of the same
    repeat, run by run, and its median; the scaling with the workers."""
    serial = [wall for wall, _ in runs['serial']]
    rows = []
    for name, timings in runs.items():
        walls = [wall for wall, _ in timings]
        ratios = [w / s for w, s in zip(walls, serial, strict=True)]
        best = int(np.argmin(walls))
        rows.append((name, walls[best], n_frames / walls[best],
                     float(np.median(ratios)),
                     ' '.join(f'{r:.2f}' for r in ratios),
                     timings[best][1]))
    out = Table(rows=rows, names=('execution', 'wall_s', 'frames_per_s',
                                  'median_vs_serial', 'each_run_vs_serial',
                                  'cpu_s'))
    for name, fmt in (('wall_s', '.2f'), ('frames_per_s', '.2f'),
                      ('median_vs_serial', '.2f'), ('cpu_s', '.2f')):
        out[name].format = fmt
    out.pprint(max_lines=-1, max_width=-1)
    rate = dict(zip(out['execution'], out['frames_per_s'], strict=True))
    for label, name in (('local', 'workers={} (own cluster)'),
                        ('running', 'running cluster, {} workers')):
        fps = [rate[name.format(n)] for n in worker_counts]
        line = ', '.join(f'{n}: {f:.1f}' for n, f in
                         zip(worker_counts, fps, strict=True))
        slope = (np.polyfit(worker_counts, fps, 1)[0]
                 if len(worker_counts) > 1 else float('nan'))
        print(f'# {label} clusters, frames/s by workers ({line}; serial '
              f'{rate["serial"]:.1f}): slope {slope:.1f} frames/s per '
              f'added worker ({slope / rate["serial"]:.2f} of the serial '
              'rate)')


def _command(folder):
    """The ``ccdphot batch`` command line of the frames (its list and
    positions written to ``folder``), without ``-o``."""
    exe = os.path.join(os.path.dirname(sys.executable), 'ccdphot')
    return [exe, 'batch', '--frame-list', os.path.join(folder, 'frames.txt'),
            '--positions', os.path.join(folder, 'positions.txt'),
            '--size', '15', '-q']


def _report_command(folder, paths, xy, address, repeat):
    """The whole ``ccdphot batch`` command (start-up, reading the
    positions, writing the ECSV output included), serially and on the
    running 2-worker cluster, in turn."""
    np.savetxt(os.path.join(folder, 'positions.txt'), xy, header='x y',
               comments='')
    with open(os.path.join(folder, 'frames.txt'), 'w') as f:
        f.write('\n'.join(paths) + '\n')
    base = _command(folder)
    modes = {'ccdphot batch (serial)': [],
             'ccdphot batch --scheduler (running, 2 workers)':
                 ['--scheduler', address]}
    walls = {name: [] for name in modes}
    for _ in range(repeat):
        for name, extra in modes.items():
            out = os.path.join(folder, 'cli.ecsv')
            start = time.perf_counter()
            subprocess.run(base + ['-o', out] + extra, check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            walls[name].append(time.perf_counter() - start)
            os.remove(out)
    serial = walls['ccdphot batch (serial)']
    rows = [(name, min(w), len(paths) / min(w), float(np.median(
        [a / b for a, b in zip(w, serial, strict=True)])),
        ' '.join(f'{a / b:.2f}' for a, b in zip(w, serial, strict=True)))
        for name, w in walls.items()]
    out = Table(rows=rows, names=('command', 'wall_s', 'frames_per_s',
                                  'median_vs_serial', 'each_run_vs_serial'))
    for name in ('wall_s', 'frames_per_s', 'median_vs_serial'):
        out[name].format = '.2f'
    print('# the whole command, start-up and ECSV output included')
    out.pprint(max_lines=-1, max_width=-1)


#: Run as ``python DRIVER ARGS...``: ``ccdphot ARGS`` with a wall-clock
#: mark (seconds since ``T0`` in the environment, the parent's clock just
#: before it started the process) at each step, printed on stderr at the
#: very end (its exit handler is registered first, so it runs last).
_DRIVER = """
import atexit, os, sys, time
T0 = float(os.environ['T0'])
marks = {}
def mark(name):
    marks.setdefault(name, time.time() - T0)
mark('python')
atexit.register(lambda: print('MARKS', repr(marks), file=sys.stderr))
from ccdphot_ext.cli.main import main
mark('cli')
import ccdphot_ext.cli.batch as cli
import ccdphot_ext.cli.batch_early as early
frame_paths = cli._frame_paths
def _frame_paths(args):
    paths = frame_paths(args)
    mark('listed')
    return paths
cli._frame_paths = _frame_paths
send, tasks = early.EarlyTasks._connect_and_send, early.EarlyTasks.tasks
def sent(self, *args):
    send(self, *args)
    mark('sent')
def handed(self, *args):
    result = tasks(self, *args)
    mark('connected')
    return result
early.EarlyTasks._connect_and_send, early.EarlyTasks.tasks = sent, handed
measure = cli._measure
def _measure(*args, **kwargs):
    mark('checked')
    import ccdphot_ext.batch.frames as fr
    open_client, record = fr.open_client, fr._Run.record
    run_measure, build, write = fr._Run.measure, fr._Run.build, fr._Run.write
    def opened(execution):
        result = open_client(execution)
        mark('connected')
        return result
    def recorded(self, k, res, **kw):
        record(self, k, res, **kw)
        mark('first')
    def measured(self):
        run_measure(self)
        mark('measured')
    def built(self, complete):
        table = build(self, complete)
        if complete:
            mark('built')
        return table
    def written(self, table):
        write(self, table)
        mark('written')
    fr.open_client, fr._Run.record = opened, recorded
    fr._Run.measure, fr._Run.build, fr._Run.write = measured, built, written
    return measure(*args, **kwargs)
cli._measure = _measure
sys.exit(main(sys.argv[1:]))
"""

#: The steps of the command: (label, mark that ends it).
_STEPS = (('interpreter, ccdphot_ext.cli', 'cli'),
          ('frames listed', 'listed'),
          ('imports, positions, checks (+ distributed, tasks sent)',
           'checked'),
          ('photometer_frames checks, connected', 'connected'),
          ('first frame back', 'first'),
          ('the other frames back, client closed', 'measured'),
          ('table built', 'built'),
          ('ECSV written', 'written'),
          ('process end', 'end'))


def _report_timeline(folder, address, repeat):
    """The median time of each step of the command, serially and on the
    running 2-worker cluster, in turn."""
    import ast

    driver = os.path.join(folder, 'timeline_driver.py')
    with open(driver, 'w') as f:
        f.write(_DRIVER)
    base = [sys.executable, driver] + _command(folder)[1:]
    modes = {'serial': [], 'running cluster, 2 workers':
             ['--scheduler', address]}
    steps = {name: [] for name in modes}
    sent = {name: [] for name in modes}
    for _ in range(repeat):
        for name, extra in modes.items():
            out = os.path.join(folder, 'timeline.ecsv')
            env = {**os.environ, 'T0': repr(time.time())}
            proc = subprocess.run(base + ['-o', out] + extra, check=True,
                                  env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
            end = time.time() - float(env['T0'])
            line = [ln for ln in proc.stderr.splitlines()
                    if ln.startswith('MARKS ')][-1]
            marks = {**ast.literal_eval(line[6:]), 'end': end}
            if 'connected' not in marks:  # serially: no client
                marks['connected'] = marks['checked']
            ends = [marks[key] for _, key in _STEPS]
            steps[name].append(np.diff([0.0] + ends))
            sent[name].append(marks.get('sent', np.nan))
            os.remove(out)
    rows = [(label, *[float(np.median([run[k] for run in steps[name]]))
                      for name in modes])
            for k, (label, _) in enumerate(_STEPS)]
    rows.append(('whole command', *[float(np.median(
        [run.sum() for run in steps[name]])) for name in modes]))
    # the tasks sent before the checks (in a thread of their own)
    rows.append(('(frames sent to the cluster, since the start)',
                 *[float(np.median(sent[name])) for name in modes]))
    out = Table(rows=rows, names=('step', *modes))
    for name in modes:
        out[name].format = '.3f'
    print(f'# the command step by step (median of {repeat} runs per mode, '
          'seconds)')
    out.pprint(max_lines=-1, max_width=-1)


@contextlib.contextmanager
def _running_cluster(n_workers, paths, boxes):
    """A ``dask scheduler`` and ``n_workers`` ``dask worker`` processes on
    127.0.0.1 (what a user starts once), warmed up by a small batch (the
    workers' first frames import and initialise what the measurement
    uses); always stopped."""
    with dask_cluster(n_workers) as address:
        photometer_frames(paths[:2 * n_workers], boxes,
                          execution=BatchExecution(scheduler=address,
                                                   progress=False))
        yield address


@contextlib.contextmanager
def dask_cluster(n_workers, env=None):
    """
    Start a ``dask scheduler`` and ``n_workers`` single-threaded ``dask
    worker`` processes on 127.0.0.1, wait for the workers and yield the
    scheduler's address; always stopped. ``env``: variables added to the
    processes' environment (``PYTHONPATH``: the tree they import).
    """
    from distributed import Client

    exe = os.path.join(os.path.dirname(sys.executable), 'dask')
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    address = f'tcp://127.0.0.1:{port}'
    # each in its own session, as when started from its own terminal or
    # service: with Linux's autogroup scheduling, processes of one session
    # share one session's CPU share on a busy machine
    quiet = {'stdout': subprocess.DEVNULL, 'stderr': subprocess.DEVNULL,
             'start_new_session': True,
             'env': {**os.environ,
                     'DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED': 'False',
                     **(env or {})}}
    procs = [subprocess.Popen([exe, 'scheduler', '--host', '127.0.0.1',
                               '--port', str(port), '--no-dashboard',
                               '--no-show'], **quiet)]
    try:
        procs += [subprocess.Popen([exe, 'worker', address, '--host',
                                    '127.0.0.1', '--nthreads', '1',
                                    '--no-nanny', '--no-dashboard'], **quiet)
                  for _ in range(n_workers)]
        with Client(address, timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _process_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime + children.ru_utime
            + children.ru_stime)


def _cpu(address, *, before):
    """CPU seconds used so far here (and by the workers of ``address``),
    ``before`` or after a run.

    The workers are asked through a client of their own, opened and closed
    outside the timed run (a second client held open in this process slows
    the run's own client down); this process's CPU is read after that
    client before a run and before it after a run, so that its cost is
    not counted."""
    if address is None:
        return _process_cpu()
    from distributed import Client

    here = None if before else _process_cpu()
    with Client(address) as client:
        workers = sum(client.run(_process_cpu).values())
    return workers + (_process_cpu() if before else here)


if __name__ == '__main__':
    sys.exit(main())
