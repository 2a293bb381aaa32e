# Licensed under a 3-clause BSD style license - see LICENSE
"""The apertures recorded in a light curve's meta, for every shape alike."""

import json
import math

import astropy.units as u
import numpy as np
from astropy.nddata import NDData
from photutils.aperture import CircularAperture, RectangularAperture

from ccdphot_ext import BoxAperture, photometer_frames


def _frames():
    rng = np.random.default_rng(3)
    # photon noise at gain 2 (7.1 ADU) and read noise
    return [NDData(rng.normal(100.0, 8.0, (40, 40)),
                   meta={'MJD-OBS': 6e4 + k, 'FILENAME': f'p{k}.fits'})
            for k in range(2)]


def test_apertures_in_meta_are_plain_numbers():
    apertures = [BoxAperture((19.5, 19.5), 9, 7, theta=30 * u.deg),
                 RectangularAperture((10.0, 12.0), 5, 3, theta=0.25),
                 CircularAperture([(30.0, 30.0), (8.0, 30.0)], r=4)]
    lc = photometer_frames(_frames(), apertures, gain=2.0)
    parts = lc.meta['parameters']['apertures']
    assert parts[0] == {'type': 'BoxAperture', 'w': 9.0, 'h': 7.0,
                        'theta': math.radians(30)}
    assert parts[1] == {'type': 'RectangularAperture', 'w': 5.0, 'h': 3.0,
                        'theta': 0.25}
    assert parts[2] == {'type': 'CircularAperture', 'r': 4.0}
    json.dumps(parts)  # plain JSON, no repr of a Quantity
    assert len(lc.meta['parameters']['positions_sha1']) == 40
