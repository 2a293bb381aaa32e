#!/usr/bin/env python
# Licensed under a 3-clause BSD style license - see LICENSE
"""
Exactness of `ccdphot_ext.BoxAperture` overlaps and the calibration of
fractional boxes' error bars (the numbers of the docs' apertures page).

1. Box masks against photutils' `~photutils.aperture.RectangularAperture`
   ``'exact'`` masks (a 32 x 32 sub-pixel sampling): the largest area error
   and per-pixel weight difference over random boxes of several sizes, for
   any angle, multiples of 45 degrees and no rotation.
2. Pulls (flux / error) of fractional boxes on white noise with the sky
   level known, with the sky term ``sum(w sigma^2)`` the package uses and
   with ``sum(w^2 sigma^2)``.

Usage::

    python benchmarks/bench_apertures.py [--boxes 300] [--frames 6]
"""

import argparse

import numpy as np
from photutils.aperture import RectangularAperture

from ccdphot_ext import BoxAperture, BudgetOptions, SkyEstimate, photometer

SIZES = ((1, 2), (2, 5), (5, 10), (10, 30))


def compare_with_photutils(n_boxes, rng):
    print('sides    | area error: any angle, k*45 deg, 0 deg | max weight '
          'difference')
    for lo, hi in SIZES:
        area_err, pixel = {}, 0.0
        for kind in ('any', 'k45', 'zero'):
            worst = 0.0
            for _ in range(n_boxes):
                w, h = rng.uniform(lo, hi, 2)
                theta = {'any': rng.uniform(-np.pi, np.pi),
                         'k45': np.pi / 4 * rng.integers(-3, 4),
                         'zero': 0.0}[kind]
                xy = rng.uniform(40, 41, 2)
                ours = BoxAperture(xy, w, h, theta=theta).to_mask()
                theirs = RectangularAperture(xy, w, h, theta=theta).to_mask(
                    method='exact')
                a, b = ours.to_image((80, 80)), theirs.to_image((80, 80))
                worst = max(worst, abs(b.sum() / (w * h) - 1))
                pixel = max(pixel, np.abs(a - b).max())
            area_err[kind] = worst
        print(f'{lo:>2}-{hi:<2} px | {area_err["any"]:.1e} '
              f'{area_err["k45"]:.1e} {area_err["zero"]:.1e} | {pixel:.1e}')


def pulls(n_frames, rng, sigma=10.0, n=40):
    """Pull spread of fractional boxes on white noise under both
    ``fractional_variance`` conventions (the same frames for both)."""
    sky = SkyEstimate(0.0, sigma, 10 ** 12)
    print('box            theta | pull std squared (default) | linear | mean')
    for side in (3.0, 5.0, 10.0, 20.0):
        for theta in (0.0, 0.5):
            spacing = int(side * 1.5) + 4
            frame = (n * spacing, n * spacing)
            centres = (np.arange(n) + 0.5) * spacing
            grid = np.array([(x, y) for x in centres for y in centres])
            out = {'squared': [], 'linear': []}
            for _ in range(n_frames):
                img = rng.normal(0.0, sigma, frame)
                box = BoxAperture(grid + rng.uniform(-0.5, 0.5, grid.shape),
                                  side + 0.37, side + 0.61, theta=theta)
                for choice, pulls_ in out.items():
                    t = photometer(img, box, sky, budget=BudgetOptions(
                        fractional_variance=choice))
                    pulls_.append(np.asarray(t['aperture_sum']
                                             / t['aperture_sum_err']))
            p, q = (np.concatenate(out[c]) for c in ('squared', 'linear'))
            print(f'{side + 0.37:5.2f} x {side + 0.61:5.2f} {theta:5.1f} | '
                  f'{p.std():26.3f} | {q.std():6.3f} | {p.mean():+.3f}'
                  f'  (N={p.size})')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('--boxes', type=int, default=300)
    parser.add_argument('--frames', type=int, default=6)
    parser.add_argument('--seed', type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    compare_with_photutils(args.boxes, rng)
    print()
    pulls(args.frames, rng)


if __name__ == '__main__':
    main()
