"""What starting a batch imports: slow modules only where they are used."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize('module', ['ccdphot_ext.batch.frames',
                                    'ccdphot_ext.photometry.table'])
def test_no_slow_imports_at_start(module):
    # scipy.stats and photutils.segmentation (with scipy.signal) cost
    # about 0.4 s of CPU; a batch that does not find stars never needs them
    code = (f'import sys, {module}; '
            "print(sorted(m for m in ('scipy.stats', 'scipy.signal', "
            "'photutils.segmentation') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == '[]'
