"""photometer_frames(): light curves over many frames, serial and on Dask."""

import os
import shutil
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, NDData, StdDevUncertainty
from astropy.table import QTable
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus

from ccdphot_ext import (
    BatchExecution,
    BoxAperture,
    DetectorParameters,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.batch import (
    AnnulusSky,
    FrameReading,
    frame_time,
    photometer_frames,
)
from ccdphot_ext.datasets.sample import render_stars, simulate_frame
from ccdphot_ext.detection.recenter import Recentering, recenter_positions
from ccdphot_ext.io.fits import read_frame
from ccdphot_ext.utils.files import write_table_atomic

SHAPE = (64, 96)
X0 = np.array([20.0, 48.0, 76.0])
Y0 = np.array([22.0, 40.0, 30.0])
FLUX = np.array([30000.0, 12000.0, 50000.0])
IDS = [101, 102, 103]
DRIFT = (0.45, -0.3)  # pixels per frame


def _frame(k, *, header_time=True, seed=None):
    dx, dy = DRIFT[0] * k, DRIFT[1] * k
    stars = {'x': X0 + dx, 'y': Y0 + dy, 'flux': FLUX}
    data, sigma, _ = simulate_frame(SHAPE, 400.0 + 10 * k, stars, gain=2.0,
                                    read_noise=6.0, psf_sigma=1.4,
                                    seed=1000 + k if seed is None else seed)
    header = fits.Header()
    header['EGAIN'] = 2.0
    header['EXPTIME'] = 20.0
    if header_time:
        header['MJD-OBS'] = 60300.0 + k / 96.0
    return CCDData(data, unit='adu', uncertainty=StdDevUncertainty(sigma),
                   meta=header)


@pytest.fixture(scope='module')
def frame_dir(tmp_path_factory):
    """Six good frames (drifting stars) and every kind of bad one."""
    d = tmp_path_factory.mktemp('frames')
    good = []
    for k in range(6):
        path = d / f'good{k}.fits'
        _frame(k).write(path)
        good.append(str(path))
    ccd = _frame(6, header_time=False)
    ccd.meta['DATE-OBS'] = '2024-01-02'
    ccd.meta['TIME-OBS'] = '03:04:05.5'
    ccd.write(d / 'dateobs.fits')
    _frame(7, header_time=False).write(d / 'notime.fits')
    (d / 'text.fits').write_text('this is not a FITS file\n')
    raw = (d / 'good0.fits').read_bytes()
    (d / 'truncated.fits').write_bytes(raw[:len(raw) // 3])
    fits.PrimaryHDU(np.zeros((3, 10, 10))).writeto(d / 'cube.fits')
    bad = {'text': str(d / 'text.fits'), 'truncated': str(d / 'truncated.fits'),
           'cube': str(d / 'cube.fits'), 'missing': str(d / 'missing.fits')}
    return {'dir': d, 'good': good, 'dateobs': str(d / 'dateobs.fits'),
            'notime': str(d / 'notime.fits'), 'bad': bad}


def _boxes(size=15):
    return BoxAperture(np.c_[X0, Y0], size, size)


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return photometer_frames(*args, **kwargs)


def _assert_tables_equal(a, b):
    assert a.colnames == b.colnames
    assert len(a) == len(b)
    for name in a.colnames:
        if name == 'time':
            assert np.array_equal(a[name].mask, b[name].mask)
            ok = ~a[name].mask
            assert np.array_equal(a[name][ok].jd1, b[name][ok].jd1)
            assert np.array_equal(a[name][ok].jd2, b[name][ok].jd2)
            continue
        va = np.asarray(getattr(a[name], 'value', a[name]))
        vb = np.asarray(getattr(b[name], 'value', b[name]))
        if va.dtype.kind == 'f':
            assert np.array_equal(va, vb, equal_nan=True), name
        else:
            assert np.array_equal(va, vb), name
        assert getattr(a[name], 'unit', None) == getattr(b[name], 'unit',
                                                         None)


# -- serial --------------------------------------------------------------

def test_rows_are_photometer_on_each_frame_and_numpy(frame_dir):
    paths = frame_dir['good']
    boxes = _boxes()
    lc = photometer_frames(paths, boxes, ids=IDS)
    assert len(lc) == 3 * len(paths)
    assert lc['frame'].tolist() == [p for p in paths for _ in IDS]
    assert lc['id'].tolist() == IDS * len(paths)
    assert set(lc['status']) == {'ok'}
    assert lc['aperture_sum'].unit == 'adu'
    for k, path in enumerate(paths):
        rows = lc[lc['frame'] == path]
        ccd = read_frame(path)
        sky = SkyEstimate.from_image(ccd, gain=2.0)  # EGAIN
        ref = photometer(ccd, boxes, sky)
        for name in ref.colnames:
            if name == 'id':
                continue
            np.testing.assert_array_equal(rows[name], ref[name])
        # plain numpy on the same pixels: box sums and the map's variance
        for row, x, y in zip(rows, X0, Y0, strict=True):
            slc = np.s_[int(y) - 7:int(y) + 8, int(x) - 7:int(x) + 8]
            flux = np.sum(ccd.data[slc] - sky.value)
            var_map = np.sum(ccd.uncertainty.array[slc] ** 2)
            assert row['aperture_sum'].value == pytest.approx(flux,
                                                              rel=1e-10)
            assert row['var_sky'].value == pytest.approx(var_map, rel=1e-10)
        assert rows['time'][0].mjd == pytest.approx(60300.0 + k / 96.0,
                                                    abs=1e-9)
        assert np.all(rows['exptime'].value == 20.0)
    assert lc.meta['n_frames'] == 6 and lc.meta['n_failed'] == 0
    assert lc.meta['last_run']['execution'] == 'serial'
    assert lc.meta['parameters']['sky'] == 'sigma_clip'
    assert set(lc.meta['versions']) >= {'ccdphot_ext', 'astropy', 'numpy'}


def test_bad_frames_are_reported_and_never_stop_the_run(frame_dir):
    bad = frame_dir['bad']
    paths = [frame_dir['good'][0], *bad.values(), frame_dir['good'][1]]
    with pytest.warns(AstropyUserWarning, match='frame failed') as record:
        lc = photometer_frames(paths, _boxes(), ids=IDS)
    failed_warnings = [str(w.message) for w in record
                       if 'frame failed' in str(w.message)]
    assert len(failed_warnings) == 4
    by_frame = {f: (s, e) for f, s, e in zip(lc['frame'], lc['status'],
                                            lc['error'], strict=True)}
    assert by_frame[paths[0]] == ('ok', '')
    assert by_frame[paths[-1]] == ('ok', '')
    expected = {'text': 'not a FITS file', 'truncated': 'truncated',
                'cube': '3-D', 'missing': 'no such file'}
    for kind, path in bad.items():
        status, error = by_frame[path]
        assert status == 'failed'
        assert expected[kind] in error
    failed = lc[lc['status'] == 'failed']
    assert len(failed) == 4 * 3
    assert np.all(np.isnan(failed['aperture_sum'].value))
    assert np.all(failed['time'].mask)
    assert failed['x_center'].tolist() == X0.tolist() * 4
    assert lc.meta['n_failed'] == 4
    assert [f['frame'] for f in lc.meta['failures']] == list(bad.values())
    # the good frames are measured exactly as without the bad ones
    alone = photometer_frames([paths[0], paths[-1]], _boxes(), ids=IDS)
    np.testing.assert_array_equal(
        lc['aperture_sum'][lc['status'] == 'ok'], alone['aperture_sum'])


def test_time_from_date_obs_and_missing_time(frame_dir):
    with pytest.warns(AstropyUserWarning, match='no MJD-OBS or DATE-OBS'):
        lc = photometer_frames([frame_dir['dateobs'], frame_dir['notime']],
                               _boxes())
    first, last = lc[0], lc[-1]
    assert first['time'].isot == '2024-01-02T03:04:05.500000'
    assert first['note'] == ''
    assert last['time'] is np.ma.masked or lc['time'].mask[-1]
    assert 'time masked' in last['note']
    assert last['status'] == 'ok'  # measured: only the time is missing
    odd = _frame(1)
    odd.meta['DATE-OBS'] = 'last tuesday'
    del odd.meta['MJD-OBS']
    with pytest.warns(AstropyUserWarning, match='unreadable time'):
        lc = photometer_frames([odd], _boxes())
    assert set(lc['status']) == {'ok'} and np.all(lc['time'].mask)
    assert "DATE-OBS='last tuesday'" in lc['note'][0]


def test_progress_lines_on_stderr(frame_dir, capsys):
    photometer_frames(frame_dir['good'][:3], _boxes(),
                      execution=BatchExecution(progress=True))
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith('ccdphot batch: 3/3 frames (0 failed, ')
    assert len(lines) == 3  # a line per ~10 %: here one per frame
    photometer_frames(frame_dir['good'][:3], _boxes())  # default: quiet
    assert capsys.readouterr().err == ''


def test_frame_time_scales_and_errors():
    t, key = frame_time({'MJD-OBS': 60000.0, 'TIMESYS': 'TT'})
    assert key == 'MJD-OBS' and t.scale == 'utc'
    assert t.tt.mjd == pytest.approx(60000.0, abs=1e-10)
    assert (60000.0 - t.mjd) * 86400.0 == pytest.approx(69.184, abs=1e-5)
    assert frame_time({}) == (None, 'missing')
    with pytest.raises(ValueError, match='MJD-OBS'):
        frame_time({'MJD-OBS': 'yesterday'})
    with pytest.raises(ValueError, match='DATE-OBS'):
        frame_time({'DATE-OBS': 'not a date'})
    with pytest.raises(ValueError, match='TIMESYS'):
        frame_time({'MJD-OBS': 1.0, 'TIMESYS': 'martian'})


def test_recentering_follows_the_drift(frame_dir):
    paths = frame_dir['good']
    small = _boxes(size=7)
    fixed = photometer_frames(paths, small, ids=IDS)
    moved = photometer_frames(paths, small, ids=IDS, recenter=True)
    for k, path in enumerate(paths):
        rows = moved[moved['frame'] == path]
        true_x, true_y = X0 + DRIFT[0] * k, Y0 + DRIFT[1] * k
        np.testing.assert_allclose(rows['x_center'], true_x, atol=0.1)
        np.testing.assert_allclose(rows['y_center'], true_y, atol=0.1)
        np.testing.assert_array_equal(rows['x_nominal'], X0)
        assert set(rows['note']) == {''}
    last = len(paths) - 1
    lost = fixed[fixed['frame'] == paths[last]]['aperture_sum'].value
    kept = moved[moved['frame'] == paths[last]]['aperture_sum'].value
    # the noise-free flux in a 7 px box on the true positions
    true_xy = np.c_[X0 + DRIFT[0] * last, Y0 + DRIFT[1] * last]
    model = render_stars(SHAPE, true_xy[:, 0], true_xy[:, 1], FLUX, sigma=1.4)
    expected = photometer(model, BoxAperture(true_xy, 7, 7),
                          SkyEstimate(0.0, 1.0, 10 ** 6))['aperture_sum']
    err = moved[moved['frame'] == paths[last]]['aperture_sum_err'].value
    assert np.all(np.abs(kept - expected) < 3 * err)
    # 2.7 px of drift pushes the stars to the edge of the unmoved box
    assert np.all(lost < 0.8 * expected)
    assert moved.meta['parameters']['recenter'] == {
        'centroid': 'com', 'box_size': 11, 'n_sigma': 2.0, 'min_snr': 5.0,
        'max_shift': None, 'iterations': 2}


def test_each_frame_is_checked_once(frame_dir, monkeypatch):
    # the frame is converted and checked once, then shared by the sky, the
    # re-centring and the sums; the numbers are those of the separate calls
    import ccdphot_ext.utils.inputs as inputs

    real, calls = inputs._as_2d_array, []

    def counted(value, name):
        calls.append(np.shape(value))
        return real(value, name)

    paths = frame_dir['good'][:2]
    sky = AnnulusSky(10, 16)
    monkeypatch.setattr(inputs, '_as_2d_array', counted)
    lc = photometer_frames(paths, _boxes(size=7), ids=IDS, recenter=True,
                           sky=sky)
    assert calls.count(SHAPE) == len(paths)
    monkeypatch.undo()
    for path in paths:
        ccd, boxes = read_frame(path), _boxes(size=7)
        xy, _ = recenter_positions(ccd, np.c_[X0, Y0], sky(ccd, boxes))
        moved = BoxAperture(xy, 7, 7)
        ref = photometer(ccd, moved, sky(ccd, moved))
        rows = lc[lc['frame'] == path]
        for name in ('x_center', 'y_center', 'sky', 'aperture_sum',
                     'aperture_sum_err'):
            np.testing.assert_array_equal(rows[name], ref[name])


def test_recenter_options_reach_the_recentering(frame_dir):
    """The Recentering given is the one each frame uses (its positions,
    and the parameters in meta); the former spellings are refused."""
    paths = frame_dir['good'][:2]
    recentering = Recentering(centroid='2dg', box_size=9, n_sigma=3.0,
                              max_shift=2)
    lc = photometer_frames(paths, _boxes(size=7), ids=IDS,
                           recenter=recentering)
    assert lc.meta['parameters']['recenter'] == {
        'centroid': '2dg', 'box_size': 9, 'n_sigma': 3.0, 'min_snr': 5.0,
        'max_shift': 2.0, 'iterations': 2}
    for path in paths:
        ccd = read_frame(path)
        xy, _ = recentering(ccd, np.c_[X0, Y0],
                            SkyEstimate.from_image(ccd, gain=2.0))
        rows = lc[lc['frame'] == path]
        np.testing.assert_array_equal(np.c_[rows['x_center'],
                                            rows['y_center']], xy)
    for old in ('recenter_box', 'recenter_n_sigma', 'max_shift'):
        with pytest.raises(TypeError, match=old):
            photometer_frames(paths, _boxes(size=7), recenter=True,
                              **{old: 3})
    with pytest.raises(TypeError, match=r"Recentering\(centroid='2dg'\)"):
        photometer_frames(paths, _boxes(size=7), recenter='2dg')


def test_recenter_positions_keeps_nominal_when_unsure():
    ccd = _frame(0)
    sky = SkyEstimate.from_image(ccd)
    pos = [(X0[0] + 1.2, Y0[0] - 0.8), (8.0, 56.0)]  # a star, empty sky
    for centroid in ('com', '2dg'):
        new, ok = recenter_positions(ccd, pos, sky, centroid=centroid)
        assert ok.tolist() == [True, False]
        assert new[0] == pytest.approx((X0[0], Y0[0]), abs=0.06)
        assert tuple(new[1]) == pos[1]
    # a star farther than max_shift is not followed
    _, ok = recenter_positions(ccd, pos[:1], sky, max_shift=1.0)
    assert ok.tolist() == [False]
    with pytest.raises(ValueError, match='box_size'):
        recenter_positions(ccd, pos, sky, box_size=2)
    with pytest.raises(ValueError, match='centroid'):
        recenter_positions(ccd, pos, sky, centroid='peak')
    with pytest.raises(TypeError, match='sky'):
        recenter_positions(ccd, pos, 400.0)


def test_annulus_sky_per_aperture(frame_dir):
    path = frame_dir['good'][2]
    lc = photometer_frames([path], _boxes(), sky=AnnulusSky(10, 16))
    ccd = read_frame(path)
    # the header's gain removes the annulus estimator's Poisson-skew bias
    ref = SkyEstimate.from_annulus(ccd, CircularAnnulus(np.c_[X0, Y0], 10,
                                                         16),
                                   gain=ccd.header['EGAIN'])
    np.testing.assert_array_equal(lc['sky'].value, ref.value)
    np.testing.assert_array_equal(lc['sky_error_on_mean'].value,
                                  ref.error_on_mean)
    assert len(set(lc['sky'].value)) == 3
    assert lc.meta['parameters']['sky'].startswith('AnnulusSky(r_in=10.0')
    with pytest.raises(ValueError, match='r_out'):
        AnnulusSky(10, 5)


def test_unit_mismatch_is_a_failed_frame(tmp_path):
    a, b = _frame(0), _frame(1)
    a.write(tmp_path / 'a.fits')
    CCDData(b.data * 2.0, unit='electron', meta=b.meta).write(
        tmp_path / 'b.fits')
    with pytest.warns(AstropyUserWarning,
                      match='frame unit electron differs from adu'):
        lc = photometer_frames([str(tmp_path / 'a.fits'),
                                str(tmp_path / 'b.fits')], _boxes())
    assert lc['status'].tolist() == ['ok'] * 3 + ['failed'] * 3
    assert 'electron' in lc['error'][-1]
    # the failed frame keeps its time, loses its numbers
    assert lc['time'][-1].mjd == b.meta['MJD-OBS']
    assert np.all(np.isnan(lc['aperture_sum'][3:].value))
    assert np.all(np.isnan(lc['exptime'][3:].value))


def _celestial_wcs():
    from astropy.wcs import WCS
    w = WCS(naxis=2)
    w.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def test_frames_with_and_without_celestial_wcs(tmp_path):
    # files on disk, first with a WCS, then without, then with again
    paths = []
    for k, with_wcs in enumerate([True, False, True]):
        ccd = _frame(k)
        if with_wcs:
            ccd.wcs = _celestial_wcs()
        paths.append(str(tmp_path / f'f{k}.fits'))
        ccd.write(paths[-1])
    for order in ([0, 1, 2], [1, 0, 2]):
        lc = photometer_frames([paths[i] for i in order], _boxes(), ids=IDS)
        assert set(lc['status']) == {'ok'} and len(lc) == 9
        sky = lc['sky_centroid']
        nowcs = lc['frame'] == paths[1]
        assert np.all(np.isnan(sky.ra.deg[nowcs]))
        ref = _celestial_wcs().pixel_to_world(X0, Y0)
        for path in (paths[0], paths[2]):
            rows = lc['frame'] == path
            np.testing.assert_allclose(sky.ra.deg[rows], ref.ra.deg,
                                       rtol=0, atol=1e-9)
            np.testing.assert_allclose(sky.dec.deg[rows], ref.dec.deg,
                                       rtol=0, atol=1e-9)
        # the other columns are photometer's on each frame
        ref = photometer(read_frame(paths[1]), _boxes(),
                         SkyEstimate.from_image(read_frame(paths[1]),
                                                gain=2.0))
        np.testing.assert_array_equal(lc['aperture_sum'][nowcs],
                                      ref['aperture_sum'])
    out = tmp_path / 'lc.ecsv'
    write_table_atomic(lc, out)
    back = QTable.read(out)
    assert np.array_equal(np.isnan(back['sky_centroid'].ra.deg), nowcs)


def test_a_frame_with_malformed_results_fails_alone(frame_dir, monkeypatch):
    # the photometer a frame is measured with (imported where it is used)
    import ccdphot_ext.photometry.table as table_module

    real = table_module.photometer
    bad_path = frame_dir['good'][1]

    def buggy(ccd, *args, **kwargs):
        table = real(ccd, *args, **kwargs)
        return table[:2] if ccd.data[0, 0] == read_frame(
            bad_path).data[0, 0] else table

    monkeypatch.setattr(table_module, 'photometer', buggy)
    with pytest.warns(AstropyUserWarning, match='one row per aperture'):
        lc = photometer_frames(frame_dir['good'][:3], _boxes(), ids=IDS)
    assert lc['status'].tolist() == ['ok'] * 3 + ['failed'] * 3 + ['ok'] * 3
    assert np.all(np.isnan(lc['aperture_sum'][3:6].value))
    assert np.all(np.isfinite(lc['aperture_sum'][6:].value))


# -- resume, checkpoints and atomic writes --------------------------------

def test_resume_skips_measured_frames_and_retries_failed(frame_dir, tmp_path):
    good = frame_dir['good']
    late = tmp_path / 'late.fits'
    out = tmp_path / 'lc.ecsv'
    first = [*good[:3], str(late)]
    with pytest.warns(AstropyUserWarning, match='no such file'):
        photometer_frames(first, _boxes(), ids=IDS, output=out)
    on_disk = QTable.read(out)
    assert on_disk['status'].tolist() == ['ok'] * 9 + ['failed'] * 3
    shutil.copy(good[5], late)  # the missing frame appears
    all_frames = [*good, str(late)]
    lc = _quiet(all_frames, _boxes(), ids=IDS, resume_from=out, output=out)
    # 3 new frames and the retried one; the 3 old ones are not re-measured
    assert lc.meta['last_run']['frames_measured'] == 4
    assert set(lc['status']) == {'ok'}
    assert lc['frame'].tolist() == [f for f in [*good[:3], *good[3:],
                                                str(late)] for _ in IDS]
    fresh = photometer_frames(all_frames, _boxes(), ids=IDS)
    for name in ('aperture_sum', 'aperture_sum_err', 'x_center', 'flags'):
        np.testing.assert_allclose(
            np.asarray(getattr(lc[name], 'value', lc[name])),
            np.asarray(getattr(fresh[name], 'value', fresh[name])),
            rtol=1e-15)
    assert np.allclose(lc['time'].mjd, fresh['time'].mjd, atol=1e-9)
    again = QTable.read(out)
    assert len(again) == len(fresh) and again.meta['n_failed'] == 0
    # nothing left to do: the table comes back as it was
    idle = photometer_frames(all_frames, _boxes(), ids=IDS, resume_from=out)
    assert idle.meta['last_run']['frames_measured'] == 0
    assert len(idle) == len(fresh)


def test_resume_with_other_parameters_is_refused(frame_dir, tmp_path):
    out = tmp_path / 'lc.ecsv'
    photometer_frames(frame_dir['good'][:2], _boxes(), output=out)
    with pytest.raises(ValueError, match='resume_from.*apertures'):
        photometer_frames(frame_dir['good'], _boxes(size=9), resume_from=out)
    with pytest.raises(ValueError, match='resume_from.*does not exist'):
        photometer_frames(frame_dir['good'], _boxes(),
                          resume_from=tmp_path / 'nope.ecsv')


class _Interrupt:
    """A sky that lets ``n`` frames through, then acts as Ctrl-C."""

    def __init__(self, n):
        self.n = n

    def __call__(self, ccd, apertures):
        if self.n == 0:
            raise KeyboardInterrupt
        self.n -= 1
        return SkyEstimate.from_image(ccd)


def test_interrupt_leaves_a_complete_file_that_resumes(frame_dir, tmp_path):
    out = tmp_path / 'lc.ecsv'
    with pytest.raises(KeyboardInterrupt):
        photometer_frames(frame_dir['good'], _boxes(), sky=_Interrupt(2),
                          output=out)
    partial = QTable.read(out)
    assert partial.meta['last_run']['complete'] is False
    assert sorted(set(partial['frame'])) == frame_dir['good'][:2]
    assert len(partial) == 6
    assert [p.name for p in tmp_path.iterdir()] == ['lc.ecsv']  # no temp


def test_checkpoints_are_complete_tables(frame_dir, tmp_path, monkeypatch):
    import ccdphot_ext.batch.frames as batch

    out = tmp_path / 'lc.ecsv'
    seen = []

    def spy(table, path, **kwargs):
        write_table_atomic(table, path, **kwargs)
        seen.append(QTable.read(path))

    monkeypatch.setattr(batch, 'write_table_atomic', spy)
    lc = photometer_frames(frame_dir['good'][:4], _boxes(), output=out,
                           execution=BatchExecution(checkpoint_interval=1e-9))
    # one checkpoint after each frame, then the final table
    assert [len(t) for t in seen] == [3, 6, 9, 12, 12]
    assert [t.meta['last_run']['complete'] for t in seen] == [False] * 4 + [
        True]
    np.testing.assert_array_equal(seen[1]['aperture_sum'],
                                  lc['aperture_sum'][:6])


def test_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / 'lc.ecsv'
    write_table_atomic(QTable({'a': [1, 2, 3]}), out)
    before = out.read_bytes()

    def broken_write(self, path, **kwargs):
        with open(path, 'w') as fh:
            fh.write('# %ECSV 1.0\n# half a tab')
        raise OSError('disk full')

    monkeypatch.setattr(QTable, 'write', broken_write)
    with pytest.raises(OSError, match='disk full'):
        write_table_atomic(QTable({'a': [4, 5, 6]}), out)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['lc.ecsv']

    def broken_replace(src, dst):
        raise OSError('interrupted rename')

    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError, match='interrupted rename'):
        write_table_atomic(QTable({'a': [7]}), out)
    monkeypatch.undo()
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['lc.ecsv']
    write_table_atomic(QTable({'a': [7]}), out)
    assert QTable.read(out)['a'].tolist() == [7]
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's


# -- arguments ------------------------------------------------------------

@pytest.mark.parametrize('kwargs, exc, match', [
    ({'sky': 'mode'}, ValueError, 'sky'),
    ({'ids': [1, 2]}, ValueError, 'ids'),
    ({'ids': [1, 1, 2]}, ValueError, 'ids'),
    ({'recenter': 'peak'}, TypeError, 'recenter'),
    ({'recenter': 1}, TypeError, 'recenter'),
    ({'gain': -1.0}, ValueError, 'gain'),
    ({'gain': 2.0, 'detector': DetectorParameters(gain=3.0)}, ValueError,
     'gain=2.0 and detector'),
    ({'detector': {'gain': 2.0}}, TypeError, 'detector'),
    ({'budget': 'linear'}, TypeError, 'budget'),
    ({'threshold': 2.0}, TypeError, 'threshold'),
    ({'zeropoint': float('nan')}, ValueError, 'zeropoint'),
    ({'execution': {'workers': 2}}, TypeError, 'execution'),
    # photometer's own keywords and the former spellings are refused
    ({'method': 'exact'}, TypeError, 'method'),
    ({'sum_method': 'center'}, TypeError, 'sum_method'),
    ({'noise': None}, TypeError, 'noise'),
    ({'fractional_variance': 'linear'}, TypeError, 'fractional_variance'),
    ({'sky_without_apertures': 1}, TypeError, 'sky_without_apertures'),
    ({'sky_without_apertures': None}, TypeError, 'sky_without_apertures'),
    ({'workers': 2}, TypeError, 'workers'),
    ({'checkpoint_interval': 10}, TypeError, 'checkpoint_interval'),
    ({'radius': 3}, TypeError, 'radius'),
    # the reading of the frames is one object (FrameReading)
    ({'reading': {'hdu': 1}}, TypeError, 'reading'),
    ({'hdu': 1}, TypeError, 'hdu'),
    ({'dq_bits': 0}, TypeError, 'dq_bits'),
    ({'unit': 'adu'}, TypeError, 'unit'),
])
def test_bad_arguments_name_the_parameter(frame_dir, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        photometer_frames(frame_dir['good'][:1], _boxes(), **kwargs)


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'workers': 0}, ValueError, 'workers must be positive'),
    ({'workers': 2.5}, ValueError, 'workers must be a whole number'),
    ({'workers': True}, TypeError, 'workers'),
    ({'workers': '2'}, TypeError, 'workers'),
    ({'workers': 2, 'scheduler': 'tcp://x:1'}, ValueError, 'at most one'),
    ({'client': object(), 'workers': 2}, ValueError, 'at most one'),
    ({'scheduler': 5}, TypeError, 'scheduler'),
    ({'scheduler': ''}, TypeError, 'scheduler'),
    ({'timeout': 0}, ValueError, 'timeout'),
    ({'checkpoint_interval': 0}, ValueError, 'checkpoint_interval'),
    ({'checkpoint_interval': float('inf')}, ValueError,
     'checkpoint_interval'),
    ({'progress': 'yes'}, TypeError, 'progress'),
])
def test_batch_execution_is_checked_when_built(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BatchExecution(**kwargs)


def test_batch_execution_values():
    run = BatchExecution(workers=2.0, timeout=5, progress=np.bool_(True))
    assert (run.workers, run.timeout, run.progress) == (2, 5.0, True)
    assert type(run.workers) is int and type(run.progress) is bool
    with pytest.raises(AttributeError):
        run.workers = 3
    with pytest.raises(TypeError):
        BatchExecution(2)  # keyword-only


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'hdu': -1}, ValueError, 'hdu must be a non-negative index'),
    ({'hdu': True}, TypeError, 'hdu'),
    ({'hdu': '  '}, ValueError, 'hdu is an empty name'),
    ({'hdu': ('SCI', '1')}, TypeError, 'hdu'),
    ({'hdu': 1.0}, TypeError, 'hdu'),
    ({'unit': 'furlong/xyz'}, ValueError, "unit='furlong/xyz' is not a unit"),
    # read as BUNIT is, then refused: its values are no light
    ({'unit': 'MAG'}, ValueError, r'unit: data in mag \(a logarithmic'),
    ({'unit': 2.0}, TypeError, 'unit'),
    ({'dq_bits': 'NOT_A_FLAG'}, ValueError, 'NOT_A_FLAG'),
])
def test_frame_reading_is_checked_when_built(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FrameReading(**kwargs)


def test_frame_reading_values():
    reading = FrameReading(hdu=('SCI', np.int64(2)), unit='electron / s',
                           dq_bits='DO_NOT_USE+SATURATED')
    assert reading.hdu == ('SCI', 2) and type(reading.hdu[1]) is int
    assert reading.unit == u.electron / u.s
    # names stay text, read by each frame's mission (SATURATED is 2 on
    # JWST, 256 on HST); bit values are summed
    assert reading.dq_bits == 'DO_NOT_USE+SATURATED'
    assert FrameReading(dq_bits='1+2').dq_bits == 3
    assert FrameReading() == FrameReading(hdu=None, unit=None, dq_bits=None)
    with pytest.raises(TypeError):
        FrameReading(1)  # keyword-only
    with pytest.raises(AttributeError):
        reading.hdu = 0  # immutable


def test_unit_is_every_frames_data_unit(tmp_path, dask_client):
    # frames without BUNIT: in adu (with a warning) unless reading says
    # otherwise; the unit is recorded, and a resume must match it
    paths = []
    for k in range(3):
        ccd = _frame(k)
        path = tmp_path / f'f{k}.fits'
        # electrons (EGAIN 2), so that either unit's gain fits the sky
        fits.PrimaryHDU(2.0 * ccd.data, fits.Header(ccd.meta)).writeto(path)
        paths.append(str(path))
    # the plain mean as the sky: the same level whatever the unit (a
    # median or clipped mean takes the gain, 1 for electrons)
    with pytest.warns(AstropyUserWarning, match='no usable BUNIT.*--unit '
                      'to ccdphot measure, find or batch'):
        plain = photometer_frames(paths, _boxes(), ids=IDS, sky='mean')
    assert plain['aperture_sum'].unit == u.adu
    assert 'unit' not in plain.meta['parameters']
    reading = FrameReading(unit='electron')
    for execution in (None, BatchExecution(client=dask_client)):
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no BUNIT warning now
            lc = photometer_frames(paths, _boxes(), ids=IDS, sky='mean',
                                   reading=reading, execution=execution)
        assert lc['aperture_sum'].unit == u.electron
        # the sums are the same numbers, now in electrons
        np.testing.assert_array_equal(lc['aperture_sum'].value,
                                      plain['aperture_sum'].value)
        assert lc.meta['parameters']['unit'] == 'electron'
    out = tmp_path / 'lc.ecsv'
    photometer_frames(paths[:2], _boxes(), ids=IDS, reading=reading,
                      sky='mean', output=out)
    with pytest.raises(ValueError, match=r'other parameters \(unit\)'):
        photometer_frames(paths, _boxes(), ids=IDS, sky='mean',
                          resume_from=out,
                          output=tmp_path / 'other.ecsv')


def test_bad_frames_and_apertures_arguments():
    with pytest.raises(ValueError, match='frames'):
        photometer_frames([], _boxes())
    with pytest.raises(TypeError, match='frames'):
        photometer_frames([np.zeros((5, 5))], _boxes())
    with pytest.raises(TypeError, match='apertures'):
        photometer_frames(['a.fits'], [(1, 2)])


# -- Dask ---------------------------------------------------------------

@pytest.fixture(scope='module')
def dask_client():
    """One real LocalCluster (2 worker processes) for this module."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=':0') as cluster, \
            Client(cluster) as client:
        yield client


def test_cluster_gives_the_serial_table(frame_dir, dask_client):
    paths = [*frame_dir['good'], frame_dir['notime'], *frame_dir['bad'].values()]
    serial = _quiet(paths, _boxes(), ids=IDS, recenter=True)
    with pytest.warns(AstropyUserWarning) as record:
        cluster = photometer_frames(
            paths, _boxes(), ids=IDS, recenter=True,
            execution=BatchExecution(client=dask_client))
    _assert_tables_equal(serial, cluster)
    assert cluster.meta['last_run']['execution'] == 'dask'
    # the same failures, each naming the worker it happened on
    assert [{k: v for k, v in f.items() if k != 'worker'}
            for f in cluster.meta['failures']] == serial.meta['failures']
    assert all(f['worker'].startswith('tcp://127.0.0.1:')
               for f in cluster.meta['failures'])
    text = ' | '.join(str(w.message) for w in record)
    # the worker's warnings come back to the client, and each failure
    assert 'notime.fits: no MJD-OBS or DATE-OBS' in text
    assert text.count('frame failed') == 4
    # the work really ran on the two worker processes
    logs = dask_client.run(lambda: os.getpid())
    assert len(logs) == 2 and os.getpid() not in logs.values()


def test_scheduler_address_and_in_memory_frames(frame_dir, dask_client):
    paths = frame_dir['good'][:3]
    serial = photometer_frames(paths, _boxes(), ids=IDS)
    remote = photometer_frames(paths, _boxes(), ids=IDS,
                               execution=BatchExecution(
                                   scheduler=dask_client.scheduler.address))
    _assert_tables_equal(serial, remote)
    frames = []
    for p in paths:
        ccd = read_frame(p)
        ccd.meta['FILENAME'] = p
        frames.append(NDData(ccd.data, meta=ccd.meta, unit=ccd.unit))
    mem_serial = photometer_frames(frames, _boxes(), ids=IDS)
    mem_cluster = photometer_frames(
        frames, _boxes(), ids=IDS,
        execution=BatchExecution(client=dask_client))
    _assert_tables_equal(mem_serial, mem_cluster)
    assert mem_cluster['frame'].tolist() == serial['frame'].tolist()
    assert isinstance(mem_cluster['time'], Time)


def test_cluster_output_is_the_serial_file(frame_dir, dask_client, tmp_path,
                                           monkeypatch):
    # the rows of each frame are made into text as the frame comes back
    # (while the workers measure the others): the rows are the same bytes
    from ccdphot_ext.utils.ecsv import LineCache

    added, real_add = [], LineCache.add

    def spy(self, table):
        added.append(len(table))
        real_add(self, table)

    monkeypatch.setattr(LineCache, 'add', spy)
    paths = [*frame_dir['good'], frame_dir['notime'], frame_dir['bad']['text']]
    text = {}
    for mode, execution in (('serial', None),
                            ('dask', BatchExecution(client=dask_client))):
        out = tmp_path / f'{mode}.ecsv'
        _quiet(paths, _boxes(), ids=IDS, output=out, execution=execution)
        text[mode] = out.read_text().splitlines()
    # the same rows (the header differs in the run: execution, seconds,
    # the worker of each failure)
    assert [line for line in text['dask'] if not line.startswith('#')] == [
        line for line in text['serial'] if not line.startswith('#')]
    assert added == [3] * len(paths)  # ahead in the Dask run only
