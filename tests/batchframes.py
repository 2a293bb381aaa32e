# Licensed under a 3-clause BSD style license - see LICENSE
"""Small simulated frames for the ``ccdphot batch`` tests: three stars of
known flux on a 48 x 90 frame, a corrupt file and a positions table."""

from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import QTable

from ccdphot_ext.datasets.sample import simulate_frame

X = [18.0, 45.0, 70.0]
Y = [20.0, 34.0, 24.0]
FLUX = [20000.0, 40000.0, 30000.0]


def write_frames(directory, n, *, untimed=()):
    """
    Write ``n`` frames (seeds 0 ... n - 1; GAIN 1.5, EXPTIME 30, MJD-OBS
    but for the indices in ``untimed``), a corrupt ``corrupt.fits`` and a
    ``stars.ecsv`` of the three stars (ids 7, 8, 9) into ``directory``.
    Returns the frame paths, the corrupt file's and the table's (str).
    """
    frames = []
    for k in range(n):
        data, sigma, _ = simulate_frame((48, 90), 300.0,
                                        {'x': X, 'y': Y, 'flux': FLUX},
                                        gain=1.5, read_noise=5.0, seed=k)
        header = fits.Header({'GAIN': 1.5, 'EXPTIME': 30.0})
        if k not in untimed:
            header['MJD-OBS'] = 60400.0 + k / 48
        path = directory / f'frame{k}.fits'
        CCDData(data, unit='adu', uncertainty=StdDevUncertainty(sigma),
                meta=header).write(path)
        frames.append(str(path))
    bad = directory / 'corrupt.fits'
    bad.write_bytes(b'SIMPLE  =                    T' + b'\0' * 100)
    positions = directory / 'stars.ecsv'
    QTable({'id': [7, 8, 9], 'x_center': X, 'y_center': Y}).write(positions)
    return frames, str(bad), str(positions)
