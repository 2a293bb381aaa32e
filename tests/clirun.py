"""
Run the ``ccdphot`` command as a test: in this process (fast: no second
interpreter paying ~1 s of imports) or, for the few smoke tests that need
the real thing, as the installed console script in a child process.
"""

import contextlib
import io
import os
import subprocess
import sys
import warnings

from ccdphot_ext.cli.main import main

__all__ = ['ccdphot', 'installed_ccdphot', 'child_env', 'EXE']

#: The installed console script beside this Python.
EXE = os.path.join(os.path.dirname(sys.executable), 'ccdphot')


def child_env():
    """This environment, with this process's ``sys.path``: a child imports
    the ``ccdphot_ext`` under test."""
    return {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}


@contextlib.contextmanager
def _working_dir(path):
    if path is None:
        yield
        return
    here = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(here)


def ccdphot(*argv, cwd=None):
    """
    ``(exit code, stdout, stderr)`` of ``ccdphot ARGV`` run in this process.

    The command turns warnings into ``ccdphot CMD: warning: ...`` lines on
    stderr: they are its output, shown here as a fresh process shows them
    (Python's default filter), not raised as the suite's
    ``filterwarnings = error`` would raise them. Tests assert on stderr.
    """
    out, err = io.StringIO(), io.StringIO()
    with (_working_dir(cwd), contextlib.redirect_stdout(out),
          contextlib.redirect_stderr(err), warnings.catch_warnings()):
        warnings.resetwarnings()
        warnings.simplefilter('default')
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def installed_ccdphot(*argv, cwd=None, timeout=120):
    """The same, through the installed console script in a child process."""
    run = subprocess.run([EXE, *map(str, argv)], capture_output=True,
                         text=True, cwd=cwd, env=child_env(),
                         timeout=timeout)
    return run.returncode, run.stdout, run.stderr
