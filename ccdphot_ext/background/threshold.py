# Licensed under a 3-clause BSD style license - see LICENSE
"""
Threshold masks: keep only the pixels of an aperture that hold signal.

The notebook's ``mask = cutout > 2 * sky_stddev`` becomes
``SigmaThreshold(2.0)``: pixels of the sky-subtracted cutout *strictly*
above ``n_sigma * sigma_sky``, found with photutils'
`~photutils.segmentation.detect_sources` (``n_pixels=1``).
"""

import warnings

import numpy as np
from photutils.segmentation import detect_sources
from photutils.utils import NoDetectionsWarning

from ..utils.inputs import positive_scalar

__all__ = ['SigmaThreshold']

_SEGMENTS = ('all', 'central')


class SigmaThreshold:
    """
    Select aperture pixels above ``n_sigma`` times the sky noise.

    Parameters
    ----------
    n_sigma : float, optional
        Threshold in units of the per-pixel sky standard deviation.
    segment : {'all', 'central'}, optional
        ``'all'`` keeps every pixel above the threshold (the notebook);
        ``'central'`` keeps only the connected segment holding the star: the
        segment under the aperture centre, or, if the centre pixel is below
        the threshold, the segment with the largest summed signal.
    connectivity : {4, 8}, optional
        Pixel connectivity for segments (photutils' default 8).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SigmaThreshold
    >>> cut = np.array([[0., 5., 0.], [0., 30., 12.], [9., 0., 0.]])
    >>> SigmaThreshold(2.0).select(cut, 5.0).astype(int)
    array([[0, 0, 0],
           [0, 1, 1],
           [0, 0, 0]])
    """

    def __init__(self, n_sigma=2.0, *, segment='all', connectivity=8):
        self.n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
        if segment not in _SEGMENTS:
            raise ValueError(f'segment must be one of {_SEGMENTS}, got '
                             f'{segment!r}')
        if connectivity not in (4, 8):
            raise ValueError(f'connectivity must be 4 or 8, got '
                             f'{connectivity!r}')
        self.segment = segment
        self.connectivity = connectivity

    def __repr__(self):
        return (f'SigmaThreshold(n_sigma={self.n_sigma}, '
                f'segment={self.segment!r})')

    def segmentation(self, cutout, sky_std, *, valid=None):
        """
        The photutils `~photutils.segmentation.SegmentationImage` of a
        sky-subtracted cutout, or None when nothing is above the threshold.
        """
        cutout = np.asarray(cutout, dtype=float)
        sky_std = positive_scalar(sky_std, 'sky_std', allow_none=False,
                                  allow_zero=True)
        level = self.n_sigma * sky_std
        bad = ~np.isfinite(cutout)
        if valid is not None:
            bad |= ~np.asarray(valid, dtype=bool)
        clean = np.where(bad, level, cutout)  # never above the threshold
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NoDetectionsWarning)
            return detect_sources(clean, level, n_pixels=1,
                                  connectivity=self.connectivity,
                                  mask=bad if bad.any() else None)

    def select(self, cutout, sky_std, *, valid=None, center=None):
        """
        Boolean mask of the selected pixels of a sky-subtracted cutout.

        Parameters
        ----------
        cutout : 2-D array
            Data minus sky over the aperture's pixels.
        sky_std : float
            Per-pixel sky standard deviation.
        valid : 2-D bool array, optional
            Pixels allowed (inside the aperture and finite).
        center : (row, col), optional
            Cutout pixel of the aperture centre, for ``segment='central'``;
            default the middle of the cutout.

        Returns
        -------
        mask : 2-D bool array
        """
        segm = self.segmentation(cutout, sky_std, valid=valid)
        if segm is None:
            return np.zeros(np.shape(cutout), dtype=bool)
        labels = segm.data
        if self.segment == 'all':
            return labels > 0
        if center is None:
            center = (labels.shape[0] // 2, labels.shape[1] // 2)
        label = labels[center]
        if label == 0:
            sums = np.bincount(labels.ravel(),
                               weights=np.where(labels > 0, cutout, 0.0).ravel())
            sums[0] = -np.inf
            label = int(np.argmax(sums))
        return labels == label
