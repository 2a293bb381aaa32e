# Licensed under a 3-clause BSD style license - see LICENSE
"""The one rule for user numbers, shared by the library and the CLI."""

import argparse
import subprocess
import sys

import numpy as np
import pytest

from ccdphot_ext.cli.common import (
    non_negative_type,
    number_type,
    positive_int_type,
    positive_type,
)
from ccdphot_ext.utils import inputs
from ccdphot_ext.utils.numbers import finite_number, positive_integer, positive_scalar


def test_library_uses_the_one_rule():
    assert inputs.positive_scalar is positive_scalar


@pytest.mark.parametrize('value', [True, np.bool_(False), '3', b'3', [1.0]])
def test_non_numbers_refused(value):
    with pytest.raises(TypeError, match='gain must be a number'):
        positive_scalar(value, 'gain')


@pytest.mark.parametrize('value, message', [
    (float('nan'), 'gain must be finite'), (np.inf, 'gain must be finite'),
    (0.0, 'gain must be positive'), (-2, 'gain must be positive')])
def test_bad_values_refused(value, message):
    with pytest.raises(ValueError, match=message):
        positive_scalar(value, 'gain')


def test_zero_and_none():
    assert positive_scalar(0, 'dark', allow_zero=True) == 0.0
    assert positive_scalar(None, 'dark') is None
    with pytest.raises(TypeError, match='dark is required'):
        positive_scalar(None, 'dark', allow_none=False)
    with pytest.raises(ValueError, match='dark must be non-negative'):
        positive_scalar(-1e-9, 'dark', allow_zero=True)
    assert positive_scalar(np.float32(2.5), 'gain') == 2.5
    assert finite_number(-3, 'zeropoint') == -3.0


def test_positive_integer_refuses_fractions():
    assert positive_integer(np.int64(7), 'n') == 7
    assert positive_integer(7.0, 'n') == 7
    with pytest.raises(ValueError, match='n must be a whole number, got 2.5'):
        positive_integer(2.5, 'n')


@pytest.mark.parametrize('convert, text, message', [
    (positive_type, '-1', 'must be positive, got -1.0'),
    (positive_type, '0', 'must be positive, got 0.0'),
    (positive_type, 'inf', 'must be finite, got inf'),
    (positive_type, 'abc', "not a number: 'abc'"),
    (non_negative_type, '-0.5', 'must be non-negative, got -0.5'),
    (number_type, 'nan', 'must be finite, got nan'),
    (positive_int_type, '0', 'must be positive, got 0.0'),
    (positive_int_type, '2.5', "not an integer: '2.5'")])
def test_cli_types_use_the_same_rule(convert, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as info:
        convert(text)
    assert str(info.value) == message


def test_cli_types_accept_good_values():
    assert positive_type('2.5') == 2.5
    assert non_negative_type('0') == 0.0
    assert number_type('-3') == -3.0
    assert positive_int_type('4') == 4


def test_numbers_module_loads_no_numpy():
    code = ('import sys, ccdphot_ext.utils.numbers, ccdphot_ext.cli.common\n'
            'print(sorted({m.split(".")[0] for m in sys.modules} & '
            '{"numpy", "astropy"}))')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == '[]'
