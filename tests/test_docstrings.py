"""
Every public function, class, method and property has a numpydoc docstring
that numpydoc's validator accepts, with the checks of the
``[tool.numpydoc_validation]`` table of ``pyproject.toml`` (read here by
numpydoc's own hook, so that the table means what it means to
``numpydoc lint``), and documents each parameter in an entry of its own.

The public objects are the names of ``ccdphot_ext.__all__`` (the type stub
``__init__.pyi``) and of each subpackage's ``__all__`` that are functions
or classes, the command's ``ccdphot_ext.cli.main``, and the public methods
and properties of the public classes (each validated once, in the class of
this package that defines it).
"""

import functools
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from numpydoc.docscrape import get_doc_object
from numpydoc.hooks.validate_docstrings import parse_config
from numpydoc.validate import Validator, validate

import ccdphot_ext
from ccdphot_ext.cli.main import main as command_main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = parse_config(ROOT)

METHOD_TYPES = (property, functools.cached_property, classmethod, staticmethod)


def _load(home):
    """The object at a dotted name (a module's path, then attributes)."""
    return Validator._load_obj(home)


def _home(obj):
    return f'{obj.__module__}.{obj.__qualname__}'


def _members(cls, public):
    """(public name, home name) of the public methods and properties that
    the classes of this package in ``cls``'s MRO define."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith('ccdphot_ext.'):
            continue
        for name, value in vars(klass).items():
            if name.startswith('_'):
                continue
            if isinstance(value, METHOD_TYPES) or inspect.isfunction(value):
                yield f'{public}.{name}', f'{_home(klass)}.{name}'


def _public_names(module):
    """The names a star import of ``module`` takes: its ``__all__``, else
    (a package of star imports) its names without a leading underscore
    that belong to this package."""
    names = getattr(module, '__all__', None)
    if names is not None:
        return [(name, getattr(module, name)) for name in names]
    return [(name, obj) for name, obj in vars(module).items()
            if not name.startswith('_')
            and getattr(obj, '__module__', '').startswith('ccdphot_ext.')]


def _public_objects():
    """(public name, home name) of every object whose docstring is
    validated, each home once, under its top-level name when it has one."""
    objects = {'ccdphot_ext.cli.main': command_main}
    subpackages = [importlib.import_module(f'ccdphot_ext.{info.name}')
                   for info in pkgutil.iter_modules(ccdphot_ext.__path__)
                   if info.ispkg]
    for module in [ccdphot_ext, *subpackages]:
        for name, obj in _public_names(module):
            if inspect.isclass(obj) or inspect.isfunction(obj):
                objects.setdefault(f'{module.__name__}.{name}', obj)
    found = {}
    for public, obj in objects.items():
        found.setdefault(_home(obj), public)
        if inspect.isclass(obj):
            for member, home in _members(obj, public):
                found.setdefault(home, member)
    return sorted((public, home) for home, public in found.items()
                  if not (CONFIG['exclude'] and CONFIG['exclude'].search(home)))


PUBLIC = _public_objects()


def _combined_entries(home):
    """Parameter entries that document several parameters at once
    (``a, b : float``): each parameter has its own type and description.
    ``*args, **kwargs`` is one entry by numpydoc's convention."""
    doc = get_doc_object(_load(home))
    entries = doc['Parameters'] + doc['Other Parameters']
    return [entry.name for entry in entries
            if ',' in entry.name and not entry.name.startswith('*')]


def _errors(home):
    """The validation errors of one object: numpydoc's configured checks,
    then one entry per parameter."""
    errors = []
    for code, message in validate(home)['errors']:
        override = CONFIG.get('overrides', {}).get(code)
        if code in CONFIG['checks'] and not (override and override.search(
                _load(home).__doc__ or '')):
            errors.append(f'{code}: {message}')
    for name in _combined_entries(home):
        errors.append(f'one entry documents several parameters: {name!r} '
                      '(give each its own type and description)')
    return errors


def test_the_configuration_is_read():
    # photutils' checks: all but a few that ask for more than the essentials
    assert {'GL08', 'PR01', 'PR02', 'PR03', 'PR04', 'PR07', 'RT03',
            'SS05'} <= CONFIG['checks']
    assert not {'ES01', 'EX01', 'SA01'} & CONFIG['checks']
    assert len(PUBLIC) > 150  # the API, not an empty walk


@pytest.mark.parametrize(('public', 'home'), PUBLIC,
                         ids=[public for public, _ in PUBLIC])
def test_docstring(public, home):
    errors = _errors(home)
    assert not errors, f'{public} ({home}):\n  ' + '\n  '.join(errors)
