"""Fixtures for every test, docs page and package doctest."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test or a doctest left open: matplotlib warns
    (an error here) when more than 20 are open in one process, which
    depends on how the tests are shared among the workers."""
    yield
    if 'matplotlib.pyplot' in sys.modules:
        sys.modules['matplotlib.pyplot'].close('all')
