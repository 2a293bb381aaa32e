import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).resolve().parent / 'data'


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope='session')
def sample_ccd():
    from ccdphot_ext import sample_frame
    return sample_frame()


@pytest.fixture(scope='session')
def sextractor_dir():
    """Source Extractor's reference frame, maps and catalogue (tests/data/
    sextractor, vendored from SEP's test data: see its README.md)."""
    folder = DATA / 'sextractor'
    missing = [name for name in ('image.fits', 'back.fits', 'rms.fits',
                                 'image.cat') if not (folder / name).is_file()]
    if missing:
        pytest.fail(f'{folder} lacks {", ".join(missing)}: the Source '
                    'Extractor reference belongs to the repository')
    return folder


# -- real frames shipped with the dependencies --------------------------------

@pytest.fixture(scope='session')
def saao_path():
    """ccdproc's raw SAAO 1.0 m frame (a8280271.fits)."""
    from importlib.resources import files

    path = files('ccdproc.tests.data') / 'a8280271.fits'
    if not path.is_file():
        pytest.fail('ccdproc no longer ships tests/data/a8280271.fits (the '
                    'raw SAAO frame these tests and docs/real_data.rst use)')
    return path


@pytest.fixture(scope='session')
def saao_raw(saao_path):
    from ccdphot_ext import read_frame
    return read_frame(saao_path, unit='adu')


@pytest.fixture(scope='session')
def saao_trimmed(saao_raw):
    """Overscan (linear fit to the row medians) and TRIMSEC."""
    import ccdproc
    from astropy.modeling import models

    hdr = saao_raw.meta
    ccd = ccdproc.subtract_overscan(saao_raw, fits_section=hdr['BIASSEC'],
                                    overscan_axis=1, median=True,
                                    model=models.Polynomial1D(1))
    return ccdproc.trim_image(ccd, fits_section=hdr['TRIMSEC'])


@pytest.fixture(scope='session')
def saao(saao_raw, saao_trimmed):
    """
    The reduced SAAO frame: TRIMSEC keeps 8 unexposed rows at the top, which
    are cut; deviation map from GAIN and RDNOISE (as docs/real_data.rst).
    """
    import astropy.units as u
    import ccdproc

    hdr = saao_raw.meta
    return ccdproc.create_deviation(
        saao_trimmed[:511], gain=hdr['GAIN'] * u.electron / u.adu,
        readnoise=hdr['RDNOISE'] * u.electron, disregard_nan=True)


@pytest.fixture(scope='session')
def m13_path():
    """astropy's M13 test image (300 x 300, crowded, celestial WCS)."""
    from astropy.utils.data import get_pkg_data_filename

    try:
        return get_pkg_data_filename(
            'data/m13.fits', package='astropy.io.fits.hdu.compressed.tests')
    except (OSError, ModuleNotFoundError) as exc:
        pytest.fail('astropy no longer ships io/fits/hdu/compressed/tests/'
                    f'data/m13.fits, the crowded real frame used here: {exc}')


@pytest.fixture(scope='session')
def m13(m13_path):
    """The M13 frame and its whole-frame sky (which says that the cluster
    leaves it few pixels)."""
    from astropy.utils.exceptions import AstropyUserWarning

    from ccdphot_ext import SkyEstimate, read_frame

    ccd = read_frame(m13_path, unit='adu')
    with pytest.warns(AstropyUserWarning, match='sources cover'):
        sky = SkyEstimate.from_image(ccd)
    return ccd, sky
