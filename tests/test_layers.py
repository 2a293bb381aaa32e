"""
The package's layers are true: a module imports only from its own
subpackage and the layers below it (docs/architecture.rst, "Layers").
Every import counts, the ones inside functions too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'ccdphot_ext'

#: The subpackages from the bottom up; a layer may import from the layers
#: before it, and from its own subpackage, never from the layers after it
#: nor from another subpackage of its own rank.
LAYERS = (
    ('_version', 'flags'),
    ('utils',),
    ('io', 'datasets'),
    ('aperture',),
    ('background',),
    ('photometry',),
    ('detection',),
    ('analysis',),
    ('batch',),
    ('visualization',),
    ('cli',),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: The package's own ``__init__``: the public names of every layer.
TOP = len(LAYERS)


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _is_module(name):
    """Whether ``ccdphot_ext.a.b`` is a module or subpackage (not a name
    defined in one)."""
    path = PACKAGE.parent.joinpath(*name.split('.'))
    return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file()


def _imports(path, module=None):
    """``(line, imported module)`` of every import of the package in a
    file (the module ``module``, by default its name in the package),
    relative ones resolved, those inside functions included."""
    module = module or _module_name(path)
    package = module if path.name == '__init__.py' else module.rpartition(
        '.')[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                source = '.'.join([*base, *filter(None, [node.module])])
            else:
                source = node.module
            # ``from . import name``: the module ``name`` if it is one
            for alias in node.names:
                inner = f'{source}.{alias.name}'
                found.append((node.lineno,
                              inner if _is_module(inner) else source))
    return [(line, name) for line, name in found
            if name == 'ccdphot_ext' or name.startswith('ccdphot_ext.')]


def _layer(module):
    """The rank of a module's subpackage (`TOP` for the package itself)."""
    parts = module.split('.')
    if len(parts) == 1:
        return TOP, 'ccdphot_ext'
    if parts[1] not in RANK:
        raise AssertionError(f'{module}: subpackage {parts[1]!r} has no '
                             'layer in tests/test_layers.py')
    return RANK[parts[1]], parts[1]


MODULES = sorted(PACKAGE.rglob('*.py'))


def test_every_subpackage_has_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir()
                   if (p / '__init__.py').is_file()}
    modules = {p.stem for p in PACKAGE.glob('*.py') if p.stem != '__init__'}
    # _version.py is written when the package is built or installed
    assert (subpackages | modules) - {'_version'} == set(RANK) - {'_version'}


@pytest.mark.parametrize('path', MODULES,
                         ids=lambda p: _module_name(p))
def test_imports_point_down(path):
    rank, home = _layer(_module_name(path))
    upward = []
    for line, name in _imports(path):
        other_rank, other = _layer(name)
        if other != home and other_rank >= rank:
            upward.append(f'{path.relative_to(PACKAGE.parent)}:{line} '
                          f'imports {name}')
    assert not upward, '\n'.join(upward)


def test_the_check_sees_every_kind_of_import(tmp_path):
    """Imports at any depth, relative or absolute, of a module or of a name
    in one: all found and resolved (the check cannot pass by not
    looking)."""
    source = tmp_path / 'fake.py'
    source.write_text(
        'import numpy\n'
        'from ..utils.files import atomic_write\n'
        'from .. import flags\n'
        'import ccdphot_ext.aperture.box\n'
        'def convert(budget):\n'
        '    if budget:\n'
        '        from ..photometry.budget import ErrorBudget\n'
        '        return ErrorBudget\n')
    found = _imports(source, 'ccdphot_ext.io.fake')
    assert found == [(2, 'ccdphot_ext.utils.files'), (3, 'ccdphot_ext.flags'),
                     (4, 'ccdphot_ext.aperture.box'),
                     (7, 'ccdphot_ext.photometry.budget')]
    rank = _layer('ccdphot_ext.io.fake')[0]
    assert [name for _, name in found if _layer(name)[0] > rank] == [
        'ccdphot_ext.aperture.box', 'ccdphot_ext.photometry.budget']
