"""
The CLI page (docs/cli.rst) lists every option: each subcommand's synopsis
holds every option its argparse parser accepts, and the options every
subcommand shares (``--debug``) are on the page.
"""

import argparse
import re
from pathlib import Path

import pytest

from ccdphot_ext.cli.main import build_parser

PAGE = Path(__file__).resolve().parent.parent / 'docs' / 'cli.rst'
#: argparse's own option, on every parser
HELP = {'-h', '--help'}


def _subparsers():
    parser = build_parser()
    actions = [a for a in parser._actions
               if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return parser, actions[0].choices


def _options(parser):
    """Every option of ``parser`` but ``--help``: its spellings (a tuple,
    e.g. ``('-o', '--output')``) and choices."""
    return {tuple(action.option_strings): tuple(action.choices or ())
            for action in parser._actions
            if action.option_strings
            and not set(action.option_strings) & HELP}


def _synopsis(text, command):
    """The first literal block of the ``ccdphot COMMAND`` section."""
    head = re.search(rf'^``ccdphot {command}``\n-+\n', text, re.MULTILINE)
    assert head, f'docs/cli.rst has no "``ccdphot {command}``" section'
    block = re.search(r'::\n\n((?:    .*\n|\n)+)', text[head.end():])
    assert block, f'the ccdphot {command} section has no synopsis block'
    synopsis = block.group(1)
    assert synopsis.lstrip().startswith(f'ccdphot {command}'), synopsis
    return synopsis


def _listed(option, text):
    return re.search(rf'(?<![\w-]){re.escape(option)}(?![\w-])', text)


def test_every_subcommand_has_a_section():
    text = PAGE.read_text()
    _, commands = _subparsers()
    assert set(commands) >= {'demo', 'measure', 'find', 'batch'}
    for command in commands:
        _synopsis(text, command)


@pytest.mark.parametrize('command', sorted(_subparsers()[1]))
def test_synopsis_lists_every_option(command):
    text = PAGE.read_text()
    parser = _subparsers()[1][command]
    synopsis = _synopsis(text, command)
    shared = set(_options(_subparsers()[0]))  # --debug: once on the page
    missing = []
    for spellings, choices in _options(parser).items():
        if set(spellings) & {s for spelling in shared for s in spelling}:
            continue
        if not any(_listed(s, synopsis) for s in spellings):
            missing.append('/'.join(spellings))
        missing += [f'{spellings[-1]} {choice}' for choice in choices
                    if not _listed(str(choice), synopsis)]
    assert not missing, (f'docs/cli.rst: the ccdphot {command} synopsis '
                         f'lacks {", ".join(missing)}')


def test_shared_options_are_on_the_page():
    text = PAGE.read_text()
    parser, _ = _subparsers()
    for spellings in _options(parser):
        assert any(_listed(s, text) for s in spellings), spellings
