"""The ccdphot command and the demo walk-through."""

import io
import os

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.table import QTable
from clirun import EXE, installed_ccdphot
from expected_warnings import gradient_warning

from ccdphot_ext import NOTEBOOK_BOXES, SkyEstimate, sample_frame, sample_truth
from ccdphot_ext.cli.demo import notebook_star_table, run_demo
from ccdphot_ext.cli.main import main
from ccdphot_ext.datasets.sample import SAMPLE_PARAMETERS, render_stars, sky_model


def test_demo_prints_every_step_and_agrees_with_numpy():
    out = io.StringIO()
    worst = run_demo(out)
    text = out.getvalue()
    assert worst < 1e-10
    for step in ('== Sky level: its uncertainty ==',
                 '== Box sum: the sky-subtracted box',
                 '== Magnitude error ==',
                 "== Error budget: each term's share of the variance",
                 '2-sigma mask', 'residual background',
                 'Several stars', 'gain 1 (the notebook', 'gain 2.23'):
        assert step in text
    for label in ('Q1', 'Q3', 'Q4', 'Step 1', 'Step 2'):  # the notebook's
        assert label not in text
    for name in NOTEBOOK_BOXES:
        assert name in text


def test_demo_outdir_writes_readable_files(tmp_path):
    run_demo(io.StringIO(), outdir=tmp_path)
    ccd = CCDData.read(tmp_path / 'sample.fits')
    assert ccd.shape == (510, 767)
    assert ccd.uncertainty is not None
    stars = QTable.read(tmp_path / 'stars.ecsv')
    assert list(stars['star']) == list(NOTEBOOK_BOXES)
    budget = QTable.read(tmp_path / 'budget.ecsv')
    assert 'total' in list(budget['term'])


def test_star_table_uses_sky_subtracted_boxes(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd, method='mean')
    with gradient_warning():
        table = notebook_star_table(sample_ccd, sky, gain=2.23)
    img = sample_ccd.data
    for row, slices in zip(table, NOTEBOOK_BOXES.values(), strict=True):
        cut = img[slices] - sky.value
        assert row['box_flux'] == pytest.approx(cut.sum(), rel=1e-10)
        assert row['n_pix'] == cut.size


def test_cli_demo_exit_zero(capsys):
    assert main(['demo']) == 0
    captured = capsys.readouterr()
    assert 'worst relative difference' in captured.out
    # the notebook's global sky is biased on purpose (the systematics step
    # explains it): no warning storm on stderr
    assert captured.err == ''


def test_cli_usage_errors_are_one_line(capsys):
    assert main([]) == 2
    assert main(['nonsense']) == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        from ccdphot_ext.cli.main import build_parser
        build_parser().parse_args(['demo', '--help'])
    assert exc.value.code == 0
    assert 'examples:' in capsys.readouterr().out


def test_console_script_installed():
    """The installed entry point, as a user would type it (the demo's run
    and its files are tested in process above)."""
    if not os.path.exists(EXE):
        pytest.fail(f'console script not installed at {EXE}')
    code, _, err = installed_ccdphot('demo', '--outdir', '/proc/forbidden/x')
    assert code == 2
    assert 'Traceback' not in err
    assert len(err.strip().splitlines()) == 1


def test_sample_frame_matches_truth():
    ccd = sample_frame()
    again = sample_frame()
    np.testing.assert_array_equal(ccd.data, again.data)  # deterministic
    truth = sample_truth()
    assert len(truth) == 40
    assert ccd.header['EGAIN'] == 2.23 and ccd.header['EXPTIME'] == 30.0
    # sky level as the notebook's (about 1035 ADU)
    assert abs(np.median(ccd.data) - 1035) < 3
    # the noise about the true model matches the background map
    p = SAMPLE_PARAMETERS
    model = sky_model() + render_stars(
        ccd.shape, truth['x'], truth['y'], truth['flux'],
        sigma=p['psf_sigma'], trail=p['trail'])
    pull = (ccd.data - model) / ccd.uncertainty.array
    assert abs(np.mean(pull)) < 0.01
    assert np.std(pull) == pytest.approx(1.0, abs=0.01)
    # each notebook star sits inside its notebook box
    for name, (ys, xs) in NOTEBOOK_BOXES.items():
        star = truth[truth['name'] == name][0]
        assert xs.start <= star['x'] < xs.stop
        assert ys.start <= star['y'] < ys.stop
