"""``_repr_html_`` (Jupyter) of budgets, measurements and sky estimates: a
compact table of the terms with their share and an inline bar; the plain
``repr`` unchanged."""

import re

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from expected_warnings import gradient_warning
from photutils.aperture import CircularAnnulus
from photutils.background import Background2D

from ccdphot_ext import (
    NOTEBOOK_BOXES,
    BoxAperture,
    DetectorParameters,
    ErrorBudget,
    SkyEstimate,
    measure,
)
from ccdphot_ext.utils.html import html_table


def _cells(html):
    """The text of every table row, as lists of cell strings."""
    rows = re.findall(r'<tr[^>]*>(.*?)</tr>', html, flags=re.S)
    return [re.findall(r'<t[dh][^>]*>(.*?)</t[dh]>', row, flags=re.S)
            for row in rows]


def _bar_width(cell):
    return int(re.search(r'width:(\d+)px', cell).group(1))


def test_budget_html_terms_shares_and_bars():
    b = ErrorBudget.from_aperture(41349.20439525999, 400,
                                  53.139015422503746, gain=2.23, n_sky=1000)
    html = b._repr_html_()
    rows = _cells(html)
    assert rows[0][:4] == ['term', 'variance', 'error', 'share']
    body = {r[0]: r for r in rows[1:]}
    assert list(body) == [*b.terms, 'total']
    for name, frac in b.fractions.items():
        row = body[name]
        assert float(row[1]) == pytest.approx(b.terms[name], rel=1e-5)
        assert float(row[2]) == pytest.approx(np.sqrt(b.terms[name]),
                                              rel=1e-5)
        assert row[3] == f'{100 * frac:.1f}%'
        assert _bar_width(row[4]) == round(80 * frac)
    assert _bar_width(body['total'][4]) == 80
    assert f'SNR {b.snr:.4g}' in html
    # the plain repr is the text one
    assert repr(b).startswith('<ErrorBudget flux=41349.2')
    assert '<table' not in repr(b)


def test_measurement_html_has_flags_and_decomposition(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    with gradient_warning():
        r = measure(sample_ccd, box, sky, gain=2.23,
                    detector=DetectorParameters(read_noise=12.0))
    html = r._repr_html_()
    assert html.startswith('<div class="ccdphot-repr">')
    assert f'flux {r.flux:.6g} +/- {r.flux_err:.6g} adu' in html
    # the sample frame's gradient: the whole-frame sky is biased here
    assert 'flags 32 (significant residual background' in html
    rows = _cells(html)
    muted = re.findall(r'<tr style="color:#777[^>]*>', html)
    assert len(muted) == len(r.budget.decomposition) > 0
    assert any(row[0].startswith('sky: read') for row in rows)
    assert repr(r).startswith('<ApertureMeasurement flux=')
    with gradient_warning():
        edge = measure(sample_ccd, BoxAperture((2.0, 2.0), 10, 10), sky,
                       gain=2.23)
    assert edge.flags == 41  # 32: the corner's sky is below the level
    assert ('flags 41 (aperture truncated by the frame edge; flux &lt;= 0 '
            '(magnitude undefined); significant residual background') in (
                edge._repr_html_())


def test_sky_html_for_level_map_and_annulus(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd, method='mean')
    rows = dict(r for r in _cells(sky._repr_html_())[1:])
    assert float(rows['level [adu]']) == pytest.approx(sky.value, rel=1e-5)
    assert float(rows['error of the level [adu]']) == pytest.approx(
        sky.error_on_mean, rel=1e-5)
    with pytest.warns(AstropyUserWarning, match='median filter'):
        bkg = SkyEstimate.from_background2d(Background2D(sample_ccd.data,
                                                         64))
    rows = dict(r for r in _cells(bkg._repr_html_())[1:])
    assert rows['shape'] == '(510, 767)'
    assert rows['box_size'] == '(64, 64)'
    ann = SkyEstimate.from_annulus(
        sample_ccd, CircularAnnulus([(501.5, 167.5), (334.5, 249.5)], 15,
                                    25))
    rows = dict(r for r in _cells(ann._repr_html_())[1:])
    assert rows['apertures'] == '2'


def test_html_table_escapes_text():
    html = html_table('a < b', ['x'], [('<script>',)], notes=['1 & 2'])
    assert '<script>' not in html
    assert '&lt;script&gt;' in html and 'a &lt; b' in html
    assert '1 &amp; 2' in html
