"""``ccdphot measure --blank-noise``: the blank-sky apertures are measured
against the sky the photometry uses (the route is recorded), on the real
Source Extractor frame."""

import numpy as np
import pytest
from astropy.table import QTable
from clirun import ccdphot


@pytest.mark.parametrize('sky, route', [('sigma_clip', 'global'),
                                        ('annulus', 'annulus')])
def test_blank_noise_follows_the_photometry_sky(sextractor_dir, tmp_path,
                                                sky, route):
    out = tmp_path / 'phot.ecsv'
    code, stdout, err = ccdphot(
        'measure', sextractor_dir / 'image.fits', '--positions',
        sextractor_dir / 'image.cat', '--radius', 5, '--sky', sky,
        '--blank-noise', '-o', out)
    assert code == 0, err
    assert f'blank-sky apertures ({route} sky' in stdout
    # a model measured against one sky and used with another is warned
    # about: never here, where the command chose the route itself
    assert 'noise was measured' not in err
    table = QTable.read(out)
    assert f"route='{route}'" in table.meta['sky_noise']
    assert np.all(np.isfinite(table['aperture_sum_err'][table['flags'] == 0]))
