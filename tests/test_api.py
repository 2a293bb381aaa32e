"""
The public API has one list, the type stub ``ccdphot_ext/__init__.pyi``
that editors and type checkers read: it agrees with what the package
exports at run time, holds every public name of the library's
subpackages, and ``import ccdphot_ext`` loads none of them until used.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from clirun import child_env

import ccdphot_ext

PACKAGE = Path(ccdphot_ext.__file__).parent
#: The subpackages whose public names are the library's API (``cli`` is
#: the command built on it: ``ccdphot_ext.cli.main``).
LIBRARY = ('flags', 'utils', 'io', 'datasets', 'aperture', 'background',
           'photometry', 'detection', 'analysis', 'batch', 'visualization')
#: The subpackages (and the module ``flags``).
SUBPACKAGES = {m.name for m in pkgutil.iter_modules([str(PACKAGE)])
               if not m.name.startswith('_')}


def _stub(path):
    """The names a stub imports (name -> the module they come from, None
    for ``from . import subpackage``) and its ``__all__``."""
    imported, declared = {}, None
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 1, 'only relative imports in the stub'
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module
        elif isinstance(node, ast.Assign) and any(
                getattr(t, 'id', None) == '__all__' for t in node.targets):
            declared = ast.literal_eval(node.value)
    return imported, declared


def _public(module):
    """What a subpackage exports: its ``__all__``, else every name of its
    namespace (the ``__all__`` of the modules it star-imports) that is not
    private nor a module."""
    names = getattr(module, '__all__', None)
    if names is None:
        names = [name for name, value in vars(module).items()
                 if not name.startswith('_')
                 and not isinstance(value, types.ModuleType)]
    return set(names)


@pytest.mark.parametrize('package', ['ccdphot_ext', 'ccdphot_ext.utils',
                                     'ccdphot_ext.background',
                                     'ccdphot_ext.detection',
                                     'ccdphot_ext.photometry'])
def test_the_stub_and_the_runtime_agree(package):
    module = importlib.import_module(package)
    imported, declared = _stub(Path(module.__file__).with_suffix('.pyi'))
    names = {name for name, source in imported.items() if source is not None}
    assert len(declared) == len(set(declared))
    assert set(declared) == names  # every imported name declared, no other
    assert sorted(module.__all__) == sorted(declared)
    for name in declared:  # each from the subpackage the stub names
        source = importlib.import_module(f'{package}.{imported[name]}')
        assert getattr(module, name) is getattr(source, name), name


def test_every_public_name_of_the_library_is_at_the_top():
    top = set(ccdphot_ext.__all__)
    exported = set()
    for sub in LIBRARY:
        public = _public(importlib.import_module(f'ccdphot_ext.{sub}'))
        missing = public - top
        assert not missing, (
            f'ccdphot_ext.{sub} exports {sorted(missing)}: add them to '
            'ccdphot_ext/__init__.pyi (import and __all__), or take them out '
            "of their module's __all__ if they are private")
        exported |= public
    assert top == exported  # and nothing at the top but those
    assert set(LIBRARY) | {'cli'} == SUBPACKAGES


def test_subpackages_are_attributes_not_star_exports():
    imported, _ = _stub(PACKAGE / '__init__.pyi')
    assert {name for name, source in imported.items()
            if source is None} == SUBPACKAGES
    assert SUBPACKAGES.isdisjoint(ccdphot_ext.__all__)
    for sub in SUBPACKAGES:
        assert getattr(ccdphot_ext, sub) is importlib.import_module(
            f'ccdphot_ext.{sub}')
    assert SUBPACKAGES <= set(dir(ccdphot_ext))


def test_import_loads_no_numpy():
    """``import ccdphot_ext`` (its version, its dir()) loads none of the
    heavy dependencies; the first public name used loads its subpackage."""
    code = ('import sys\n'
            'import ccdphot_ext\n'
            'ccdphot_ext.__version__, dir(ccdphot_ext)\n'
            'heavy = {"numpy", "astropy", "photutils", "scipy", "matplotlib"}\n'
            'print(sorted({m.split(".")[0] for m in sys.modules} & heavy))\n'
            'ccdphot_ext.measure\n'
            'print("ccdphot_ext.photometry" in sys.modules)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=child_env(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ['[]', 'True']
