#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
Benchmark of `ccdphot_ext.find_stars` against SEP's ``extract``.

A square float64 frame with Gaussian stars (FWHM 3 px, fluxes log-uniform
over two decades) on a flat sky with Gaussian noise, plus a few hundred
one-pixel cosmic rays. Prints the median time of `find_stars` (sky given,
default options) and of ``sep.extract`` at the same threshold on the same
sky-subtracted frame, their ratio, the number found by each and the box
side `find_stars` suggests.

Usage::

    python benchmarks/bench_find.py [--size 2048] [--n-stars 3000]
        [--repeat 5] [--seed 1]

The issue's large case is ``--size 4200 --n-stars 70000 --repeat 1``.
"""

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import sep
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate, find_stars
from ccdphot_ext.datasets.sample import render_stars


def make_frame(size, n_stars, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(5, size - 5, n_stars)
    y = rng.uniform(5, size - 5, n_stars)
    flux = 10 ** rng.uniform(3.0, 5.0, n_stars)
    image = render_stars((size, size), x, y, flux, sigma=3.0 / 2.3548)
    image += rng.normal(200.0, 10.0, image.shape)
    n_cr = max(size * size // 20000, 1)
    image[rng.integers(0, size, n_cr), rng.integers(0, size, n_cr)] += 2000.0
    return image


def _median_time(func, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument('--size', type=int, default=2048)
    parser.add_argument('--n-stars', type=int, default=3000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)

    image = make_frame(args.size, args.n_stars, args.seed)
    sky = SkyEstimate(200.0, 10.0, image.size, method='known')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t_find, stars = _median_time(
            lambda: find_stars(image, sky), args.repeat)
    data = np.ascontiguousarray(image - 200.0)
    if image.size > 2048 * 2048:  # SEP's defaults overflow on crowded frames
        sep.set_extract_pixstack(10_000_000)
        sep.set_sub_object_limit(100_000)
    t_sep, objs = _median_time(
        lambda: sep.extract(data, 5.0, err=10.0, minarea=5,
                            deblend_cont=1.0), args.repeat)
    print(f'# find_stars vs sep.extract: {args.size}^2 float64 frame, '
          f'{args.n_stars} stars, {os.cpu_count()} CPUs, '
          f'{platform.processor() or platform.machine()}, '
          f'numpy {np.__version__}, sep {sep.__version__}')
    print(f'find_stars    {t_find:8.3f} s   {len(stars):6d} found   '
          f'box {stars.meta["box_side"]} px')
    print(f'sep.extract   {t_sep:8.3f} s   {len(objs):6d} found')
    print(f'ratio         {t_find / t_sep:8.1f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
