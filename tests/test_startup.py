"""What starting a batch imports: slow modules only where they are used."""

import subprocess
import sys

import pytest


def _printed(code):
    """What ``code``, run in a fresh interpreter, prints (stripped)."""
    return subprocess.run([sys.executable, '-c', code], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize('module', ['ccdphot_ext.batch.frames',
                                    'ccdphot_ext.photometry.table'])
def test_no_slow_imports_at_start(module):
    # scipy.stats and photutils.segmentation (with scipy.signal) cost
    # about 0.4 s of CPU; a batch that does not find stars never needs them
    code = (f'import sys, {module}; '
            "print(sorted(m for m in ('scipy.stats', 'scipy.signal', "
            "'photutils.segmentation') if m in sys.modules))")
    assert _printed(code) == '[]'


def test_batch_client_loads_no_measuring_code():
    # ccdphot batch --scheduler only collects what its workers measure:
    # the batch API and the command load neither the photometer (with
    # astropy.modeling, about 0.1 s of CPU) nor the star finder; the
    # photometer is loaded where a frame is measured
    code = ('import sys, ccdphot_ext.cli.batch, ccdphot_ext.batch.frames; '
            'from ccdphot_ext.batch import AnnulusSky; '
            "print(sorted(m for m in ('ccdphot_ext.photometry.table', "
            "'astropy.modeling', 'ccdphot_ext.detection.findstars', "
            "'ccdphot_ext.background.noise') if m in sys.modules))")
    assert _printed(code) == '[]'


def test_batch_client_loads_no_photutils():
    # nor photutils (0.4 s of CPU with the scipy modules it loads): the
    # command describes its circles and boxes without building them, and
    # the batch API and the run's modules import photutils where frames
    # are measured
    code = ('import sys, ccdphot_ext.cli.batch, ccdphot_ext.batch.frames, '
            'ccdphot_ext.batch.layout; '
            "print(sorted(m for m in sys.modules if m.split('.')[0] == "
            "'photutils' or m == 'scipy.ndimage'))")
    assert _printed(code) == '[]'
