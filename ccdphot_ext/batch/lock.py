# Licensed under a 3-clause BSD style license - see LICENSE
"""
One writer per output: an advisory lock beside a batch's output file, and
the cleaning of temporary files that a killed run left behind.
"""

import fcntl
import os
import socket
from contextlib import contextmanager

from ..utils.files import hidden_sibling, temporary_pattern

__all__ = ['OutputLockedError', 'output_lock']


class OutputLockedError(OSError):
    """Another run is writing the same output (its lock is held)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ''


def _lock_path(target):
    return hidden_sibling(target, len('.lock')) + '.lock'


@contextmanager
def output_lock(path):
    """
    Hold an exclusive advisory lock on the output ``path`` while writing it.

    The lock is an `fcntl.flock` on the file ``.NAME.lock`` beside the
    output (a symbolic link is followed to its target first), holding the
    process id and host of the holder. A second run that asks for the same
    output while the lock is held gets `OutputLockedError` at once, before
    it reads or writes anything. The operating system drops the lock when
    the holder exits, even on ``kill -9``, so a stale lock never blocks a
    later run. With the lock held, temporary files of this output left by a
    killed run (``.NAME.XXXXXXXX.tmp``) are removed. The lock file is
    removed on release.

    Parameters
    ----------
    path : str or path-like
        The output file.

    Yields
    ------
    lock_path : str

    Raises
    ------
    OutputLockedError
        Naming the output and the holder of the lock.
    OSError
        Naming the output and the lock file, when the lock cannot be taken
        (no permission, a full or read-only disk).

    Examples
    --------
    >>> import os, tempfile
    >>> from ccdphot_ext.batch.lock import OutputLockedError, output_lock
    >>> out = os.path.join(tempfile.mkdtemp(), 'lc.ecsv')
    >>> with output_lock(out):
    ...     try:
    ...         with output_lock(out):
    ...             pass
    ...     except OutputLockedError as exc:
    ...         print(str(exc).split(';')[0])
    output .../lc.ecsv is being written by another run (pid ...)
    """
    target = os.path.realpath(os.fspath(path))
    lock_path = _lock_path(target)
    shown = os.fspath(path)
    try:
        fd = _acquire(lock_path, shown)
    except OutputLockedError:
        raise
    except OSError as exc:  # no permission, a full disk, a read-only disk
        raise _lock_error(exc, shown, lock_path) from None
    try:
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f'pid {os.getpid()} on {socket.gethostname()}\n'
                         .encode())
            clean_stale_temps(target)
        except OSError as exc:
            raise _lock_error(exc, shown, lock_path) from None
        yield lock_path
    finally:
        try:
            os.unlink(lock_path)  # still ours: unlinked before unlocking
        except OSError:
            pass
        os.close(fd)


def _lock_error(exc, shown, lock_path):
    """An `OSError` naming the output and its lock file."""
    reason = exc.strerror or str(exc)
    return OSError(exc.errno, f'output {shown}: cannot take its lock '
                              f'{lock_path} ({reason})')


def _acquire(lock_path, shown):
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors='replace').strip()
            os.close(fd)
            raise OutputLockedError(
                f'output {shown} is being written by another run '
                f'({holder or "holder unknown"}); wait for it to finish or '
                f'choose another output (lock {lock_path})') from None
        # the holder before us may have removed the file we opened
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock_path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def clean_stale_temps(path):
    """
    Remove the temporary files of ``path`` left by a killed writer.

    They are the ``.NAME.XXXXXXXX.tmp`` files that
    `~ccdphot_ext.utils.files.atomic_write` makes beside ``NAME``; call this
    only while holding `output_lock`, so that no live writer owns them.

    Returns
    -------
    removed : list of str
    """
    target = os.path.realpath(os.fspath(path))
    folder, pattern = os.path.dirname(target), temporary_pattern(target)
    removed = []
    for entry in os.scandir(folder):
        if pattern.fullmatch(entry.name) and entry.is_file(
                follow_symlinks=False):
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            removed.append(entry.path)
    return removed
