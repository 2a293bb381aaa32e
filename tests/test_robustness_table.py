"""
The guarantees table of ``docs/robustness.rst`` cannot rot: every row
names at least one test, and every test it names exists (the function in
the file named, or in some test file for a bare name; a parametrized
case's id in that file).
"""

import re
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
PAGE = TESTS.parent / 'docs' / 'robustness.rst'

#: the short file names the table uses
SHORT = {'never_lose': 'test_batch_never_lose.py',
         'hostile_inputs': 'test_hostile_inputs.py',
         'hostile_outputs': 'test_hostile_outputs.py'}

#: ``tests/test_x.py::test_y[case]``, ``short::test_y``, ``test_y`` or a
#: whole file ``tests/test_x.py``
REFERENCE = re.compile(r'``(?:(?:tests/)?(?P<file>[\w]+(?:\.py)?)::)?'
                       r'(?P<name>test_\w+)(?:\[(?P<case>[^\]]*)\])?``'
                       r'|``tests/(?P<whole>test_\w+\.py)``')


def _rows():
    """(guarantee, proven-by text) of each row of the guarantees table."""
    text = PAGE.read_text()
    start = text.index('.. _robustness-guarantees:')
    table = text[text.index('.. list-table::', start):
                 text.index('\n.. _', start + 1)]
    rows = re.split(r'\n   \* - ', table)[2:]  # the options, the header
    assert len(rows) >= 20, 'the guarantees table was not found'
    out = []
    for row in rows:
        guarantee, _, proof = row.partition('\n     - ')
        assert proof, f'a row names no test: {guarantee[:60]!r}'
        out.append((' '.join(guarantee.split())[:70], proof))
    return out


def _defines(path, name):
    return re.search(rf'^(?:async )?def {name}\(', path.read_text(),
                     re.MULTILINE) is not None


def _references():
    refs = []
    for guarantee, proof in _rows():
        found = list(REFERENCE.finditer(proof))
        assert found, f'{guarantee!r}: names no test'
        refs += [pytest.param(guarantee, m, id=m.group(0).strip('`'))
                 for m in found]
    return refs


def test_every_row_names_a_test():
    assert all(REFERENCE.search(proof) for _, proof in _rows())


@pytest.mark.parametrize('guarantee, match', _references())
def test_named_test_exists(guarantee, match):
    if match['whole']:
        assert (TESTS / match['whole']).is_file(), guarantee
        return
    name, short = match['name'], match['file']
    if short:
        files = [TESTS / SHORT.get(short, short if short.endswith('.py')
                                   else f'{short}.py')]
        assert files[0].is_file(), f'{guarantee!r}: no {files[0].name}'
    else:
        files = sorted(TESTS.glob('test_*.py'))
    holders = [f for f in files if _defines(f, name)]
    assert holders, f'{guarantee!r}: no test {name} in the test files'
    case = (match['case'] or '').split('-')[0]
    if case and case != '...':
        assert any(case in f.read_text() for f in holders), (
            f'{guarantee!r}: {name} has no case {case!r}')
