import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope='session')
def sample_ccd():
    from ccdphot_ext import sample_frame
    return sample_frame()


@pytest.fixture(scope='session')
def shared_dir():
    """The read-only ../shared folder; required in CI, optional elsewhere."""
    if not SHARED.is_dir():
        if os.environ.get('CI') == 'true':
            pytest.fail(f'{SHARED} is missing in CI')
        pytest.skip(f'{SHARED} not present beside the repository')
    return SHARED
