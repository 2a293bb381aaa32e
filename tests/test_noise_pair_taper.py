"""The blank sky's pixel-pair covariance keeps the lags it holds
significantly (by ring, along the rows, the columns and off them) and no
others: far lags of noise whose correlation ends are chance, weighted by
tens of thousands of pixel pairs in the sums of large squares."""

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

from ccdphot_ext.background.noise import (
    PAIR_LAG,
    pair_covariance,
    pair_variance,
)


def _ring(lag=PAIR_LAG):
    d = np.abs(np.arange(-lag, lag + 1))
    return np.maximum.outer(d, d)


def test_correlation_that_ends_is_cut_where_it_ends():
    # 3 x 3-correlated noise on 128 x 128 pixels (about the blank pixels
    # of a crowded 300 x 300 frame): covariance up to 2 pixels only
    ring = _ring()
    exact = []
    for side in (7, 15, 21):
        w = convolve2d(np.ones((side, side)), np.ones((3, 3)) / 9.0)
        exact.append(15.0 * np.sqrt(np.sum(w * w)))
    for seed in range(3):
        rng = np.random.default_rng(seed)
        resid = uniform_filter(rng.normal(0.0, 15.0, (128, 128)), 3)
        cov, n = pair_covariance(resid, np.zeros(resid.shape, dtype=bool),
                                 5.0)
        assert n == resid.size
        assert np.all(cov[ring <= 2] > 0.0)
        # (at seed 2 the rows' lags 3-5 are held by chance: 6 of 576)
        assert np.count_nonzero(cov[ring >= 3]) <= 6
        ratio = np.sqrt(pair_variance(cov, np.array([49.0, 225.0, 441.0])))
        # 0.96-1.04 of the exact scatter at 7-21 pixels (every far lag
        # kept, 21 pixel squares read 0.87-1.16 of it)
        assert np.all(np.abs(ratio / exact - 1.0) < 0.05), ratio / exact


def test_row_offsets_are_kept_along_the_rows():
    # white noise of 5 with each row offset by a draw of 2: the pixels of
    # a row share 4 ADU**2 at every lag along it, no others
    ring = _ring()
    rng = np.random.default_rng(3)
    resid = (rng.normal(0.0, 5.0, (128, 128))
             + rng.normal(0.0, 2.0, (128, 1)))
    cov, _ = pair_covariance(resid, np.zeros(resid.shape, dtype=bool), 5.0)
    along = cov[PAIR_LAG, :]
    assert np.all(np.abs(along[ring[PAIR_LAG] > 0] - 4.0) < 1.5)
    off = np.ones(cov.shape, dtype=bool)
    off[PAIR_LAG, :] = False
    assert np.count_nonzero(cov[off]) <= 8   # (a ring held by chance)
