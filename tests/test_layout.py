"""
The apertures of a batch as a layout: circles and boxes described,
checked against a frame and sent to workers without building them, and
described exactly as the same apertures built.
"""

import json
import pickle

import numpy as np
import pytest
from photutils.aperture import CircularAperture

from ccdphot_ext import BoxAperture
from ccdphot_ext.aperture.utils import check_extent
from ccdphot_ext.batch.frames import _json_safe
from ccdphot_ext.batch.layout import ApertureLayout
from ccdphot_ext.utils.windows import extent_limit

XY = np.array([[10.25, 12.5], [30.0, 5.125], [7.0, 40.0]])
IDS = np.array([3, 9, 12])


def _text(description):
    return json.dumps(_json_safe(description), sort_keys=True)


@pytest.mark.parametrize('light, built', [
    (ApertureLayout.circles(XY, 4.5), CircularAperture(XY, 4.5)),
    (ApertureLayout.boxes(XY, 15, 9), BoxAperture(XY, 15, 9))])
def test_described_as_the_built_apertures(light, built):
    given = ApertureLayout.of(built)
    assert _text(light.describe(IDS)) == _text(given.describe(IDS))
    assert light.n_rows == given.n_rows == 3
    np.testing.assert_array_equal(light.positions, XY)
    assert not light.built
    # what it builds is what the command built before
    assert type(light.apertures) is type(built)
    np.testing.assert_array_equal(light.apertures.positions, built.positions)
    assert _text(ApertureLayout.of(light.apertures).describe(IDS)) == \
        _text(light.describe(IDS))


def test_other_positions_or_ids_another_digest():
    layout = ApertureLayout.circles(XY, 4.5)
    digest = layout.describe(IDS)['positions_sha1']
    assert ApertureLayout.circles(XY + 0.5, 4.5).describe(
        IDS)['positions_sha1'] != digest
    assert layout.describe(IDS + 1)['positions_sha1'] != digest


def test_extent_checked_as_the_built_apertures():
    shape = (100, 100)
    assert extent_limit(shape) == 4_000_000
    # the bound: sides at most two pixels more than the size
    small = ApertureLayout.circles(XY, 999.0)  # (2 r + 2)^2 = 4e6
    small.check_extent(shape)
    assert not small.built
    # not surely within the limit: built and checked as photutils' boxes
    near = ApertureLayout.circles(XY, 999.4)
    near.check_extent(shape)
    assert near.built
    for huge in (ApertureLayout.circles(XY, 1e5),
                 ApertureLayout.boxes(XY, 3e3, 2e3)):
        with pytest.raises(ValueError) as light:
            huge.check_extent(shape, '--radius 1e5')
        with pytest.raises(ValueError) as built:
            check_extent(ApertureLayout.of(huge.apertures).apertures,
                         shape, '--radius 1e5')
        assert str(light.value) == str(built.value)
        assert 'far more than the frame (100, 100)' in str(light.value)


def test_sent_without_its_apertures():
    layout = ApertureLayout.boxes(XY, 15, 9)
    assert layout.apertures is layout.apertures  # built once
    copy = pickle.loads(pickle.dumps(layout))
    assert not copy.built
    np.testing.assert_array_equal(copy.apertures.positions, XY)
    # apertures given built travel as they are
    given = pickle.loads(pickle.dumps(ApertureLayout.of(
        CircularAperture(XY, 2.0))))
    assert given.built and given.apertures.r == 2.0


@pytest.mark.parametrize('bad, error', [([], ValueError),
                                        ('box', TypeError),
                                        ([CircularAperture(XY, 2), 3],
                                         TypeError)])
def test_of_refuses_what_is_not_apertures(bad, error):
    with pytest.raises(error, match='apertures'):
        ApertureLayout.of(bad)
