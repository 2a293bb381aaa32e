# Licensed under a 3-clause BSD style license - see LICENSE
"""
The bad-input catalogue (internal): every kind of bad input the package is
tested against, and what the user gets for it.

One list, `CATALOGUE`, feeds both the table of ``docs/robustness.rst``
(rendered by `catalogue_rst`) and ``tests/test_bad_input_catalogue.py``
(one test per row, checking the outcome through the Python API or the
``ccdphot`` command), so the documentation cannot drift from the behaviour.
After editing a row, regenerate the table with::

    cd tests
    python -c "from bad_input_catalogue import catalogue_rst as r; print(r())"

and paste it between the ``catalogue-start`` / ``catalogue-end`` comments of
``docs/robustness.rst``.
"""

from dataclasses import dataclass

from ccdphot_ext.flags import FLAG_DESCRIPTIONS

__all__ = []  # internal module

#: Section titles of the table, in order.
GROUPS = {
    'frames': 'Frames and arrays',
    'files': 'FITS files (read_frame)',
    'apertures': 'Apertures',
    'detector': 'Detector parameters and headers',
    'sky': 'Sky and threshold',
    'budget': 'Error budget',
    'units': 'Units',
    'cli': 'Command line (ccdphot measure)',
}

OUTCOMES = ('error', 'flag', 'warning', 'result')


@dataclass(frozen=True)
class BadInput:
    """
    One row of the catalogue.

    Parameters
    ----------
    key : str
        Stable identifier (the test id).
    group : str
        A key of `GROUPS`.
    case : str
        What is wrong, in words.
    passes : str
        What the user passes (Python or a shell command).
    outcome : {'error', 'flag', 'warning', 'result'}
        An exception, a flag bit on the row, a warning, or a (correct)
        result.
    exception : str
        Exception or warning class name for 'error' and 'warning'.
    names : str
        Text the message must contain: the parameter, option or file it
        names.
    flag : int
        Flag bit(s) set, for 'flag'.
    note : str
        More about the outcome (shown in the table).
    gap : str
        A known gap: the documented outcome is not delivered yet (the test
        is a strict xfail with this reason).
    """

    key: str
    group: str
    case: str
    passes: str
    outcome: str
    exception: str = ''
    names: str = ''
    flag: int = 0
    note: str = ''
    gap: str = ''

    def __post_init__(self):
        if self.group not in GROUPS:
            raise ValueError(f'group must be one of {tuple(GROUPS)}, got '
                             f'{self.group!r}')
        if self.outcome not in OUTCOMES:
            raise ValueError(f'outcome must be one of {OUTCOMES}, got '
                             f'{self.outcome!r}')

    @property
    def cli(self):
        """True when the row is checked through the ``ccdphot`` command."""
        return self.group == 'cli'

    def describe(self):
        """The outcome in words (one table cell)."""
        if self.outcome == 'error' and self.cli:
            text = (f'exit code 2, one line ``ccdphot measure: error: ...`` '
                    f'naming ``{self.names}``')
        elif self.outcome == 'error':
            text = f'``{self.exception}`` naming ``{self.names}``'
        elif self.outcome == 'flag':
            bits = [b for b in FLAG_DESCRIPTIONS if self.flag & b]
            text = ', '.join(f'flag {b} ({FLAG_DESCRIPTIONS[b]})'
                             for b in bits)
        elif self.outcome == 'warning':
            text = f'``{self.exception}``'
        else:
            text = ''
        if self.note:
            text = f'{text}; {self.note}' if text else self.note
        if self.gap:
            text += f' **Known gap:** {self.gap}'
        return text


def _row(key, group, case, passes, outcome, **kwargs):
    return BadInput(key, group, case, passes, outcome, **kwargs)


def _error(key, group, case, passes, exception, names, **kwargs):
    return BadInput(key, group, case, passes, 'error', exception=exception,
                    names=names, **kwargs)


def _cli_error(key, case, passes, names, **kwargs):
    return BadInput(key, 'cli', case, passes, 'error', names=names, **kwargs)

#: Every row of the bad-input catalogue, grouped as in `GROUPS`. In the
#: Python cases ``img`` is a 40 x 50 float frame, ``box`` is
#: ``BoxAperture.from_slices(np.s_[10:20, 10:20])`` and ``sky`` is
#: ``SkyEstimate.from_image(img)``.
CATALOGUE = (
    # -- frames and arrays ---------------------------------------------------
    _error('cube', 'frames', '3-D array', 'measure(np.ones((3, 40, 50)), '
           'box, sky)', 'ValueError', 'data', note='"data must be 2-D"'),
    _error('empty_array', 'frames', 'empty array',
           'measure(np.ones((0, 50)), box, sky)', 'ValueError', 'data',
           note='"data is empty"'),
    _error('text_array', 'frames', 'array of strings',
           "measure(np.array([['a', 'b'], ['c', 'd']]), box, sky)",
           'TypeError', 'data', note='"data must be numeric"'),
    _error('no_data', 'frames', 'no data', 'measure(None, box, sky)',
           'TypeError', 'data'),
    _error('all_nan_sky', 'frames', 'all-NaN frame: sky',
           'SkyEstimate.from_image(np.full((40, 50), np.nan))', 'ValueError',
           'data', note='no finite, unmasked pixel to estimate the sky from'),
    _row('all_nan_photometer', 'frames', 'all-NaN frame: photometry',
         'photometer(np.full((40, 50), np.nan), box, sky)', 'flag',
         flag=2, note='``aperture_sum`` NaN, ``n_pix`` 0'),
    _error('all_nan_measure', 'frames', 'all-NaN box: measure',
           'measure(np.full((40, 50), np.nan), box, sky)', 'ValueError',
           'aperture', note='"holds no finite, unmasked pixel"'),
    _row('nan_in_box', 'frames', 'NaN and inf inside a box',
         'img[12, 12] = np.nan; img[13, 13] = np.inf; '
         'photometer(img, box, sky)', 'flag', flag=2,
         note='the two pixels are excluded, ``n_pix`` is 98, the flux is not '
              'scaled up'),
    _row('masked_in_box', 'frames', 'masked pixels inside a box',
         'photometer(img, box, sky, mask=mask)', 'flag', flag=2,
         note='masked pixels excluded and not counted in ``n_pix``'),
    _row('nan_in_uncertainty', 'frames', 'NaN or inf in the uncertainty '
         'map inside a box', 'photometer(img, box, sky, uncertainty=sigma)',
         'warning', exception='AstropyUserWarning', names='uncertainty',
         note='the pixel is a bad pixel: excluded from the sum and from '
         '``var_sky``, the row gets flag 2 (all engines, `measure`, the sky, '
         'the CLI)'),
    _row('zero_in_uncertainty', 'frames', 'zero sigma in some pixels of '
         'the uncertainty map', 'photometer(img, box, sky, uncertainty=sigma)',
         'warning', exception='AstropyUserWarning', names='uncertainty',
         note='a zero sigma claims a noiseless pixel (the error bar would '
         'shrink): the pixel is a bad pixel as for NaN, flag 2; the warning '
         'counts the pixels and names the first'),
    _row('uint16', 'frames', 'uint16 frame near 65535',
         'photometer(CCDData(u16, unit="adu"), box, sky, '
         'detector=DetectorParameters(saturation=65535))',
         'flag', flag=4, note='sums, sky and budget in float64: no overflow, '
         'equal to numpy on the float64 pixels'),
    _error('uncertainty_shape', 'frames', 'uncertainty of the wrong shape',
           'measure(img, box, sky, uncertainty=np.ones((3, 3)))',
           'ValueError', 'uncertainty'),
    _error('uncertainty_negative', 'frames', 'negative uncertainty',
           'measure(img, box, sky, uncertainty=-np.ones(img.shape))',
           'ValueError', 'uncertainty',
           note='also one negative pixel: the count and the first pixel are '
                'named'),
    _error('uncertainty_zero', 'frames', 'all-zero uncertainty map',
           'photometer(img, box, sky, uncertainty=np.zeros(img.shape))',
           'ValueError', 'uncertainty',
           note='also an all-NaN or all-inf map: the error bars would be '
                'too small or undefined'),
    _row('numpy_masked_array', 'frames', 'a numpy masked array',
         'photometer(np.ma.MaskedArray(img, mask), box, sky)', 'flag', flag=2,
         note='its mask is used as ``mask=`` (also by the sky, `measure` '
              'and `find_stars`); the caller\'s array is not changed'),
    _error('mask_shape', 'frames', 'mask of the wrong shape',
           'measure(img, box, sky, mask=np.ones((3, 3), bool))',
           'ValueError', 'mask'),
    # -- FITS files ----------------------------------------------------------
    _error('file_missing', 'files', 'missing file',
           "read_frame('nope.fits')", 'FrameReadError', 'nope.fits',
           note='"no such file"; ``FrameReadError`` is an ``OSError`` and a '
                '``ValueError``'),
    _error('file_directory', 'files', 'a directory', "read_frame('folder')",
           'FrameReadError', 'folder', note='"is a directory"'),
    _error('file_empty', 'files', 'empty file (0 bytes)',
           "read_frame('empty.fits')", 'FrameReadError', 'empty.fits',
           note='"empty file"'),
    _error('file_text', 'files', 'text file named .fits',
           "read_frame('notes.fits')", 'FrameReadError', 'notes.fits',
           note='"not a FITS file"'),
    _error('file_truncated', 'files', 'truncated FITS file',
           "read_frame('cut.fits')", 'FrameReadError', 'cut.fits',
           note='"truncated"'),
    _error('file_cube', 'files', '3-D FITS image', "read_frame('cube.fits')",
           'FrameReadError', 'cube.fits', note='"3-D image"'),
    _row('file_nonstandard_cards', 'files', 'header with non-standard '
         'cards (ESO-LOG)', "read_frame('image.fits')", 'warning',
         exception='AstropyUserWarning', names='non-standard',
         note='one warning; the cards are kept and the frame is read'),
    _row('file_uint16', 'files', 'uint16 FITS (BZERO 32768) near 65535',
         "read_frame('u16.fits')", 'result', note='values up to 65535 read '
         'exactly; photometry equals numpy in float64'),
    # -- apertures -----------------------------------------------------------
    _row('box_over_edge', 'apertures', 'box over the edge',
         'photometer(img, BoxAperture.from_slices(np.s_[35:45, 10:20]), sky)',
         'flag', flag=1, note='the in-frame part is summed (``n_pix`` 50)'),
    _row('box_off_frame_photometer', 'apertures', 'box off the frame: '
         'photometer', 'photometer(img, BoxAperture((-50, -50), 5, 5), sky)',
         'flag', flag=1, note='a NaN row (``aperture_sum``, error, mag), '
         '``n_pix`` 0'),
    _error('box_off_frame_measure', 'apertures', 'box off the frame: '
           'measure', 'measure(img, BoxAperture((-50, -50), 5, 5), sky)',
           'ValueError', 'aperture', note='"lies entirely off the frame"'),
    _row('box_larger_than_frame', 'apertures', 'box larger than the frame',
         'photometer(img, BoxAperture((24.5, 19.5), 100, 100), sky)',
         'warning', exception='AstropyUserWarning', names='cover every pixel',
         note='the whole frame is summed (``n_pix`` 2000) against a level '
         'of those very pixels: flags 1 and 32'),
    _error('box_reversed', 'apertures', 'reversed box',
           'BoxAperture.from_slices(np.s_[20:10, 10:20])', 'ValueError',
           'slices', note='"empty or reversed"'),
    _error('box_step', 'apertures', 'box with a step',
           'BoxAperture.from_slices(np.s_[10:20:2, 10:20])', 'ValueError',
           'slices', note='"step 1" needed'),
    _error('box_negative', 'apertures', 'negative slice bound',
           'BoxAperture.from_slices(np.s_[-5:5, 0:10])', 'ValueError',
           'slices', note='absolute pixel indices, never numpy\'s '
           '"from the end"'),
    _error('box_open', 'apertures', 'open slice',
           'BoxAperture.from_slices(np.s_[:10, 0:10])', 'ValueError',
           'slices', note='explicit start and stop needed'),
    _error('box_zero_width', 'apertures', 'zero width',
           'BoxAperture((10, 10), 0, 5)', 'ValueError', 'width'),
    _error('box_nan_position', 'apertures', 'NaN position',
           'BoxAperture((np.nan, 10), 5, 5)', 'ValueError', 'position'),
    _error('not_an_aperture', 'apertures', 'not an aperture',
           'measure(img, (10, 10), sky)', 'TypeError', 'aperture'),
    _error('measure_many', 'apertures', 'several positions to measure',
           'measure(img, BoxAperture([(10, 10), (20, 20)], 5, 5), sky)',
           'ValueError', 'aperture', note='use ``photometer``'),
    _error('no_apertures', 'apertures', 'empty list of apertures',
           'photometer(img, [], sky)', 'ValueError', 'apertures'),
    # -- detector parameters and headers --------------------------------------
    _error('gain_zero', 'detector', 'gain 0', 'measure(img, box, sky, '
           'gain=0)', 'ValueError', 'gain'),
    _error('gain_negative', 'detector', 'negative gain',
           'photometer(img, box, sky, gain=-2)', 'ValueError', 'gain'),
    _error('gain_text', 'detector', 'non-numeric gain',
           "measure(img, box, sky, gain='abc')", 'TypeError', 'gain'),
    _error('gain_nan', 'detector', 'NaN gain',
           'measure(img, box, sky, gain=np.nan)', 'ValueError', 'gain'),
    _error('read_noise_negative', 'detector', 'negative read noise',
           'DetectorParameters(read_noise=-5)', 'ValueError', 'read_noise'),
    _error('exptime_zero', 'detector', 'exposure time 0',
           'DetectorParameters(exptime=0)', 'ValueError', 'exptime'),
    _error('saturation_negative', 'detector', 'negative saturation',
           'DetectorParameters(saturation=-1)', 'ValueError', 'saturation'),
    _row('header_gain_text', 'detector', "header GAIN = 'abc'",
         "measure(CCDData(img, unit='adu', meta={'GAIN': 'abc', "
         "'EGAIN': 2.0}), box, sky)", 'warning',
         exception='AstropyUserWarning', names='GAIN',
         note='the card is ignored; the next keyword (EGAIN) is used'),
    _row('header_gain_negative', 'detector', 'header GAIN = -1',
         "photometer(CCDData(img, unit='adu', meta={'GAIN': -1}), box, sky)",
         'warning', exception='AstropyUserWarning', names='GAIN',
         note='ignored: no gain, ``var_source`` NaN, ``meta`` notes say so'),
    _row('header_without_gain', 'detector', 'a header naming the '
         'detector (EXPTIME, RDNOISE) but no gain',
         "photometer(CCDData(img, unit='adu', meta={'EXPTIME': 30, "
         "'RDNOISE': 5}), box, sky)", 'warning',
         exception='AstropyUserWarning', names='no gain',
         note='``var_source`` NaN (errors too small for bright stars), '
              'those rows flagged 2048; a bare array, or a header naming '
              'no detector, only notes it (and flags the rows)'),
    _row('read_noise_without_gain', 'detector', 'read noise but no gain',
         'measure(img, box, sky, detector=DetectorParameters(read_noise=5))',
         'result',
         note='read noise cannot be converted to ADU: ignored, and '
              '``budget.notes`` says so'),
    # -- sky and threshold ---------------------------------------------------
    _error('sky_method', 'sky', 'unknown sky method',
           "SkyEstimate.from_image(img, method='mode')", 'ValueError',
           'method'),
    _error('sky_not_estimate', 'sky', 'a number as the sky',
           'measure(img, box, 100.0)', 'TypeError', 'sky'),
    _error('sky_negative_std', 'sky', 'negative sky sigma',
           'SkyEstimate(100.0, -1.0, 500)', 'ValueError', 'std'),
    _error('sky_levels', 'sky', 'one sky level per aperture, wrong count',
           'photometer(img, box, SkyEstimate([1, 2], [1, 1], [9, 9]))',
           'ValueError', 'sky'),
    _row('sky_nan_pixels', 'sky', 'NaN pixels in the sky frame',
         'SkyEstimate.from_image(img_with_nan)', 'warning',
         exception='AstropyUserWarning', names='excluded',
         note='counted in ``sky.meta["n_excluded_bad"]`` and '
              '``sky.n_rejected``'),
    _error('sky_maxiters', 'sky', 'zero, negative or fractional clipping '
           'iterations', 'SkyEstimate.from_image(img, maxiters=0)',
           'ValueError', 'maxiters',
           note='also ``from_annulus`` and a fraction; a text or a bool is a '
                '``TypeError``'),
    _error('annulus_all_masked', 'sky', 'every annulus pixel masked or NaN',
           'SkyEstimate.from_annulus(img, ann, mask=np.ones(img.shape, bool))',
           'ValueError', 'annulus',
           note='"no sky annulus holds a finite, unmasked pixel"; one such '
                'annulus among others gets a NaN level and flag 64'),
    _row('annulus_off_frame', 'sky', 'one annulus off the frame, others on '
         'it', 'SkyEstimate.from_annulus(img, CircularAnnulus([(-500, 20), '
         '(25, 20)], 4, 8))', 'warning', exception='AstropyUserWarning',
         names='doubtful', note="its level is NaN, ``n_pix`` 0 and "
         "``meta['flags']`` 64; the other is measured"),
    _error('annulus_radii', 'sky', 'annulus inner radius not below the '
           'outer', 'CircularAnnulus((20, 20), r_in=8, r_out=8)',
           'ValueError', 'r_out', note="photutils' own check"),
    _error('annulus_huge', 'sky', 'annulus far larger than the frame '
           '(a typo in the outer size)',
           'SkyEstimate.from_annulus(img, CircularAnnulus((20, 20), 4, 1e5))',
           'ValueError', 'annulus',
           note='refused before any memory is taken (it would need '
                'hundreds of GiB)'),
    _row('annulus_degenerate', 'sky', 'annulus of fewer than 5 usable '
         'pixels, or of pixels all equal',
         'SkyEstimate.from_annulus(np.full(img.shape, 7.0), ann)',
         'warning', exception='AstropyUserWarning', names='all equal',
         note="``meta['flags']`` 64: a scatter of 0 (or from a handful of "
              'pixels) would give the sky no error'),
    _error('blank_no_sky', 'sky', 'blank-sky apertures on an all-NaN or '
           'all-masked frame',
           'ApertureNoise.from_blank_apertures(np.full(img.shape, np.nan), '
           'sky)', 'ValueError', 'data', note='"no blank sky"'),
    _error('blank_constant', 'sky', 'blank-sky apertures on a constant frame',
           'ApertureNoise.from_blank_apertures(np.full(img.shape, 100.0), '
           'sky)', 'ValueError', 'data', note='"do not scatter"'),
    _error('blank_sizes', 'sky', 'blank-aperture sides fractional or '
           'repeated', 'ApertureNoise.from_blank_apertures(img, sky, '
           'sizes=[2.5, 3])', 'ValueError', 'sizes',
           note='also ``sizes=[3, 3]`` (two different sides are needed)'),
    _error('blank_n_apertures', 'sky', 'too few blank apertures per size',
           'ApertureNoise.from_blank_apertures(img, sky, n_apertures=5)',
           'ValueError', 'n_apertures', note='at least 20'),
    _error('blank_seed', 'sky', 'a seed numpy cannot use',
           "ApertureNoise.from_blank_apertures(img, sky, seed='x')",
           'TypeError', 'seed'),
    _error('blank_sky_unit', 'sky', 'blank apertures: sky in another unit '
           'than the data', 'ApertureNoise.from_blank_apertures(ccd_electron, '
           'sky_adu)', 'UnitsError', 'sky unit'),
    _error('threshold_negative', 'sky', 'negative threshold sigma',
           'SigmaThreshold(-2)', 'ValueError', 'n_sigma'),
    _error('threshold_number', 'sky', 'a number as the threshold',
           'measure(img, box, sky, threshold=2.0)', 'TypeError', 'threshold'),
    # -- error budget --------------------------------------------------------
    _error('budget_npix_zero', 'budget', 'n_pix 0',
           'ErrorBudget.from_aperture(100.0, 0, 5.0)', 'ValueError', 'n_pix'),
    _error('budget_negative_sigma', 'budget', 'negative sky sigma',
           'ErrorBudget.from_aperture(100.0, 10, -5.0)', 'ValueError',
           'sky_std'),
    _error('budget_nan_flux', 'budget', 'NaN flux',
           'ErrorBudget.from_aperture(np.nan, 10, 5.0)', 'ValueError',
           'flux'),
    _row('budget_constant_frame', 'budget', 'a constant frame (sky '
         'scatter 0)', 'photometer(np.full((40, 50), 100.0), box, '
         'SkyEstimate.from_image(...))', 'result',
         note='flag 72 and a "doubtful sky" warning; ``aperture_sum_err``, '
              '``snr`` NaN: the error is unknown, never 0 (a row with no '
              'pixel keeps its exact 0)'),
    _error('budget_negative_term', 'budget', 'negative variance term',
           "ErrorBudget(100.0, {'sky': -1.0})", 'ValueError', 'sky'),
    _error('uncertainty_model', 'budget', 'unknown uncertainty model',
           "BudgetOptions(uncertainty_model='mixed')", 'ValueError',
           'uncertainty_model'),
    _error('overlap_method_measure', 'budget', 'unknown overlap method: '
           'measure', "measure(img, box, sky, sum_method='foo')",
           'ValueError', 'sum_method'),
    _error('overlap_method_photometer', 'budget', 'unknown overlap method: '
           'photometer', "photometer(img, box, sky, sum_method='foo')",
           'ValueError', 'sum_method'),
    # -- units ---------------------------------------------------------------
    _error('unit_sky_measure', 'units', 'sky in adu, data in electrons: '
           'measure', "measure(img * u.electron, box, "
           "SkyEstimate.from_image(img * u.adu))", 'UnitsError', 'sky'),
    _error('unit_sky_photometer', 'units', 'sky in adu, data in electrons: '
           'photometer', "photometer(img * u.electron, box, "
           "SkyEstimate.from_image(img * u.adu))", 'UnitsError', 'sky'),
    _error('unit_uncertainty', 'units', 'uncertainty in seconds',
           'measure(img * u.adu, box, sky, uncertainty=sigma * u.s)',
           'UnitsError', 'uncertainty'),
    _error('unit_uncertainty_plain', 'units', 'uncertainty with a unit, '
           'data without', 'measure(img, box, sky, uncertainty=sigma * u.adu)',
           'UnitsError', 'uncertainty'),
    _error('unit_gain', 'units', 'gain in seconds',
           'measure(img, box, sky, gain=2 * u.s)', 'UnitsError', 'gain'),
    _error('unit_saturation', 'units', 'saturation as a Quantity',
           'DetectorParameters(saturation=6e4 * u.adu)',
           'TypeError', 'saturation', note='pass it in the data unit'),
    # -- command line --------------------------------------------------------
    _cli_error('cli_missing', 'missing file', 'ccdphot measure nope.fits '
               '--box 10:20,10:20', 'nope.fits'),
    _cli_error('cli_directory', 'a directory', 'ccdphot measure folder '
               '--box 10:20,10:20', 'folder'),
    _cli_error('cli_empty', 'empty file', 'ccdphot measure empty.fits '
               '--box 10:20,10:20', 'empty.fits'),
    _cli_error('cli_text', 'text file', 'ccdphot measure notes.fits '
               '--box 10:20,10:20', 'notes.fits'),
    _cli_error('cli_truncated', 'truncated FITS file', 'ccdphot measure '
               'cut.fits --box 10:20,10:20', 'cut.fits'),
    _cli_error('cli_cube', '3-D FITS image', 'ccdphot measure cube.fits '
               '--box 10:20,10:20', 'cube.fits'),
    _cli_error('cli_box_text', 'malformed box', 'ccdphot measure '
               'frame.fits --box abc', '--box'),
    _cli_error('cli_box_one_range', 'one range only', 'ccdphot measure '
               'frame.fits --box 10:20', '--box'),
    _cli_error('cli_box_reversed', 'reversed box', 'ccdphot measure '
               'frame.fits --box 20:10,10:20', '--box'),
    _cli_error('cli_box_step', 'box with a step', 'ccdphot measure '
               'frame.fits --box 10:20:2,10:20', '--box'),
    _cli_error('cli_box_float', 'non-integer bounds', 'ccdphot measure '
               'frame.fits --box 10.5:20,10:20', '--box'),
    _cli_error('cli_box_negative', 'negative bound', 'ccdphot measure '
               'frame.fits --box -5:5,10:20', '--box'),
    _cli_error('cli_box_off', 'box off the image', 'ccdphot measure '
               'frame.fits --box 100:110,10:20', '--box'),
    _cli_error('cli_box_larger', 'box larger than the image',
               'ccdphot measure frame.fits --box 0:400,0:500', '--box',
               note='the command refuses boxes past the edge (the Python '
                    'API flags them)'),
    _cli_error('cli_gain_zero', 'gain 0', 'ccdphot measure frame.fits '
               '--box 10:20,10:20 --gain 0', '--gain'),
    _cli_error('cli_gain_negative', 'negative gain', 'ccdphot measure '
               'frame.fits --box 10:20,10:20 --gain -2', '--gain'),
    _cli_error('cli_gain_text', 'non-numeric gain', 'ccdphot measure '
               'frame.fits --box 10:20,10:20 --gain abc', '--gain'),
    _cli_error('cli_threshold_negative', 'negative threshold',
               'ccdphot measure frame.fits --box 10:20,10:20 --threshold -2',
               '--threshold'),
    _cli_error('cli_uncertainty_shape', 'uncertainty map of another '
               'shape', 'ccdphot measure frame.fits --box 10:20,10:20 '
               '--uncertainty small.fits', '--uncertainty'),
    _cli_error('cli_box_size_tiny', 'Background2D mesh of one pixel',
               'ccdphot measure frame.fits --box 10:20,10:20 --sky '
               'background2d --box-size 1', '--box-size',
               note='a mesh needs at least 5 pixels (3 x 3 is the smallest '
                    'square one)'),
    _row('cli_header_without_gain', 'cli', 'header naming the detector but '
         'no gain', 'ccdphot measure frame.fits --box 10:20,10:20', 'result',
         note='exit code 0, one warning line "no gain"; ``var_source`` NaN; '
              "bright stars' rows flagged 2048"),
    _row('cli_nonstandard_cards', 'cli', 'header with non-standard cards '
         '(ESO-LOG)', 'ccdphot measure image.fits --box 100:110,100:110',
         'result', note='exit code 0; warnings are single '
         '``ccdphot measure: warning:`` lines'),
    _row('cli_header_gain_text', 'cli', "header GAIN = 'abc'",
         'ccdphot measure badgain.fits --box 10:20,10:20', 'result',
         note='exit code 0, one warning line naming GAIN; no gain used'),
    _row('cli_uint16', 'cli', 'uint16 frame near 65535', 'ccdphot measure '
         'u16.fits --box 10:20,10:20 --sky mean -o out.ecsv', 'result',
         note='exit code 0; the written sums equal numpy in float64'),
)


@dataclass(frozen=True)
class Assumption:
    """
    Something the package decides on the user's behalf, and where that
    decision can be seen (one row of the docs' assumptions table).
    """

    key: str
    what: str
    default: str
    visible: str


#: Every assumption made on the user's behalf; none is silent.
ASSUMPTIONS = (
    Assumption('sky_method', 'Sky estimator',
               "``'sigma_clip'``: 3-sigma clip about the median, 10 "
               'iterations, mean of the kept pixels',
               "``sky.method`` and ``sky.meta``; ``meta['sky_method']`` of "
               'the photometer table; printed by ``ccdphot measure``'),
    Assumption('sky_excluded', 'Pixels left out of the sky',
               'NaN/inf/masked pixels excluded; sources and their wings '
               'masked (default); clipped pixels dropped and '
               'the clipped std corrected (x 1.0136 at 3 sigma)',
               "an ``AstropyUserWarning`` for NaN/inf/masked pixels; "
               "``sky.meta['n_excluded_bad']``, ``['n_masked_sources']``, "
               "``['source_mask']``, ``['n_clipped']``, "
               "``['std_factor']``; ``sky.n_rejected``"),
    Assumption('missing_gain', 'No gain known',
               'the source Poisson term is left out (never a gain of 1); '
               'rows where it could raise the error by more than 5% are '
               'flagged 2048 (:ref:`missing-gain`)',
               "``budget.notes``; ``var_source`` NaN, ``meta['gain']`` None, "
               "``meta['gain_source']`` ``'missing'`` and ``meta['notes']``; "
               'flag 2048 (`~ccdphot_ext.photometer`, the CLI and batches); '
               'an ``AstropyUserWarning`` when the header names the '
               'detector (read noise, exposure time) but no gain'),
    Assumption('header_gain', 'Gain from the header',
               'the first of GAIN, EGAIN, CCDGAIN holding a positive number',
               "``result.detector.sources['gain']`` (``measure``), "
               "``meta['gain_source']`` (``photometer``); unusable cards warn"),
    Assumption('bad_pixels', 'Masked, NaN or inf pixels in an aperture',
               'left out; the flux is not scaled up',
               'flag 2; ``n_pix`` counts the pixels used'),
    Assumption('edge', 'Aperture past the frame edge',
               'the part inside the frame is summed', 'flag 1; ``n_pix``'),
    Assumption('exptime', 'No exposure time',
               'magnitudes from the plain sum, ``-2.5 log10(aperture_sum)``',
               "``meta['exptime_source']`` ``'missing'`` and "
               "``meta['notes']``"),
    Assumption('zeropoint', 'No zero point', '0 (instrumental magnitudes)',
               "``meta['zeropoint']`` None"),
    Assumption('uncertainty_model', 'What an uncertainty map holds',
               "``'background'``: the map gives the sky term, the source "
               'term still comes from the gain',
               "``meta['uncertainty_model']``; ``budget.notes``"),
    Assumption('sky_mean', 'Error of the sky level',
               'included (``sky_mean`` term)',
               "``meta['include_sky_mean']``; when left out, "
               '``budget.notes`` says the level was taken as exact'),
    Assumption('read_noise_no_gain', 'Read noise but no gain',
               'ignored: electrons cannot be converted to ADU',
               '``budget.notes``'),
    Assumption('overlap_method', 'Pixel overlap of photutils apertures',
               "``'exact'`` (boxes are exact; axis-aligned boxes whatever "
               "``sum_method``)",
               "``meta['sum_method']``"),
    Assumption('saturation', 'Saturation level',
               'the header\'s SATURATE or SATLEVEL; none means no check',
               "``meta['saturation']`` (None: flag 4 never set)"),
    Assumption('bunit', 'FITS file without BUNIT',
               'data in ``adu``', "an ``AstropyUserWarning`` from "
               '``read_frame``; ``ccd.unit``'),
)


def _literal(text):
    return f'``{text}``'


def assumptions_rst(assumptions=ASSUMPTIONS):
    """The assumptions as one reStructuredText ``list-table``."""
    lines = ['.. list-table::', '   :header-rows: 1',
             '   :widths: 22 40 38', '', '   * - Assumption',
             '     - What is done', '     - Where you see it']
    for item in assumptions:
        lines += [f'   * - {item.what}', f'     - {item.default}',
                  f'     - {item.visible}']
    return '\n'.join(lines) + '\n'


def catalogue_rst(catalogue=CATALOGUE):
    """
    The catalogue as reStructuredText: one ``list-table`` per group.

    Examples
    --------
    >>> from bad_input_catalogue import catalogue_rst
    >>> print(catalogue_rst().splitlines()[0])
    Frames and arrays
    """
    lines = []
    for group, title in GROUPS.items():
        rows = [c for c in catalogue if c.group == group]
        if not rows:
            continue
        lines += [title, '^' * len(title), '', '.. list-table::',
                  '   :header-rows: 1', '   :widths: 22 43 35', '',
                  '   * - Case', '     - You pass', '     - Outcome']
        for case in rows:
            lines += [f'   * - {case.case}', f'     - {_literal(case.passes)}',
                      f'     - {case.describe()}']
        lines.append('')
    return '\n'.join(lines).rstrip('\n') + '\n'
