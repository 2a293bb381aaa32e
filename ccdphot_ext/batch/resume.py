# Licensed under a 3-clause BSD style license - see LICENSE
"""
Resuming a batch: what a previous light-curve table holds, matched to the
frames of this run.

A previous table is used only when it can be trusted: it must be readable,
hold the columns a batch writes, record the parameters it was measured with
(equal to this run's) and the identity of each of its frames. Anything else
is refused with a message naming the file, before any frame is measured.

Frames are matched by identity, never by the name as typed: the absolute
path of the file when it was measured (another working folder, another
spelling of the same path, a symbolic link to the same folder all match;
a folder moved elsewhere matches by file name, size and modification time),
and its size and modification time, which say whether the file changed
since. A frame of the previous table is kept only when it is complete: one
successful row per star id, from a file that has not changed; otherwise it
is measured again (with a warning naming it and why). A failed frame keeps
only its name, time and reason, and is measured again when it is among the
frames. Frames of the previous table that this run does not list are kept
as they are.
"""

import os
import warnings

import numpy as np
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from .worker import STATUS_OK, FrameResult, file_fingerprint

__all__ = []  # internal module: photometer_frames(resume_from=) is public

#: the columns every light-curve table holds
_REQUIRED = ('frame', 'time', 'id', 'status', 'error')


def frame_identity(frame, name, fingerprint=None):
    """
    The identity of a frame, for ``meta['frame_files']``: its name in the
    table, the absolute path of its file and the file's size and
    modification time (ns) when it was read (None for an in-memory frame,
    or a file that could not be read).
    """
    if isinstance(frame, NDData):
        return {'frame': name, 'path': None, 'size': None, 'mtime_ns': None}
    size, mtime = fingerprint if fingerprint is not None else (None, None)
    return {'frame': name, 'path': os.path.abspath(os.fspath(frame)),
            'size': size, 'mtime_ns': mtime}


def load_previous(resume_from, parameters):
    """
    The previous table and how to name it, checked: readable, a
    light-curve table, measured with ``parameters``, with an identity for
    each frame.

    Raises
    ------
    ValueError
        Naming the file (``resume_from:``) and what is wrong with it.
    """
    if isinstance(resume_from, QTable):
        old, label = resume_from, 'the given table'
    else:
        path = os.fspath(resume_from)
        if not os.path.exists(path):
            raise ValueError(f'resume_from: {path} does not exist')
        label = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                old = QTable.read(path, format='ascii.ecsv')
        except Exception as exc:  # astropy raises many kinds for bad files
            reason = ' '.join(str(exc).split())[:200] or type(exc).__name__
            raise ValueError(f'resume_from: cannot read {path} as a light-'
                             f'curve table ({reason}); move it away or write '
                             'to a new output') from None
    missing = [name for name in _REQUIRED if name not in old.colnames]
    if missing:
        raise ValueError(f'resume_from: {label} is not a photometer_frames '
                         f'table (no {", ".join(missing)} column)')
    _check_parameters(old, label, parameters)
    _check_identities(old, label)
    return old, label


def _check_parameters(old, label, parameters):
    before = old.meta.get('parameters')
    if not isinstance(before, dict):
        raise ValueError(f'resume_from: {label} records no parameters (its '
                         "meta['parameters'] is missing: re-saved by another "
                         'tool?), so it cannot be shown to be measured as '
                         'this run measures; start a new output')
    if before != parameters:
        diff = sorted(k for k in set(before) | set(parameters)
                      if before.get(k) != parameters.get(k))
        raise ValueError(f'resume_from: {label} was measured with other '
                         f'parameters ({", ".join(diff)}); start a new file')


def _check_identities(old, label):
    entries = old.meta.get('frame_files')
    names = set(str(n) for n in old['frame'])
    known = {e.get('frame') for e in entries or ()
             if isinstance(e, dict)}
    lacking = sorted(names - known)
    if not isinstance(entries, list) or lacking:
        shown = ', '.join(lacking[:3]) + (', ...' if len(lacking) > 3 else '')
        raise ValueError(f'resume_from: {label} records no file identity '
                         f"(meta['frame_files']) for {shown or 'its frames'}:"
                         ' it was changed by another tool, and its frames '
                         'cannot be matched to these; start a new output')


class Resumed:
    """
    A previous table matched to this run's frames.

    Parameters
    ----------
    old : `~astropy.table.QTable`
        The previous table (from `load_previous`).
    label : str
        How to name it in warnings.
    frames, names : list
        This run's frames and their names in the table.
    ids : array
        This run's star ids (a complete frame has one row of each).

    Attributes
    ----------
    todo : list of int
        The indices of the frames to measure.
    ok_rows : `~astropy.table.QTable`
        The successful rows kept, their ``frame`` the name this run gives
        the frame (a frame of the previous table that this run does not
        list keeps its name, or its path when one of this run's frames has
        that name).
    failed_names, failed : list
        The failed frames kept (not measured again), as results.
    identities : dict
        Frame name -> identity of every frame kept.
    """

    def __init__(self, old, label, frames, names, ids):
        self.label = label
        entries = {e['frame']: e for e in old.meta['frame_files']}
        ok = np.asarray(old['status']) == STATUS_OK
        rows_of = {}
        for r, name in enumerate(str(n) for n in old['frame']):
            rows_of.setdefault(name, []).append(r)
        match = _Matcher(frames, names)
        want = sorted(str(i) for i in np.asarray(ids))
        taken = set(names)
        keep, final, done = np.zeros(len(old), dtype=bool), {}, set()
        where = {}  # old name -> this run's frame it was matched to
        self.failed_names, self.failed, self.identities = [], [], {}
        for name, rows in rows_of.items():
            entry, rows = entries[name], np.asarray(rows)
            i = match.index(entry)
            if i is not None:
                if i in done:
                    self._warn(names[i], f'{label} holds it twice (as '
                               f'{name} too): those rows are dropped')
                elif self._stands(rows, ok, old, want, entry, frames[i],
                                  names[i]):
                    keep[rows] = True
                    done.add(i)
                    final[name], where[name] = names[i], frames[i]
                continue
            # not in this run: kept as it is, under a name of its own
            final[name] = name if name not in taken else (
                entry.get('path') or f'{name} (earlier run)')
            if np.all(ok[rows]):
                keep[rows] = True
            else:
                self._keep_failed(old, rows[~ok[rows]][0], final[name],
                                  entry)
        for name, new in final.items():
            entry = {**entries[name], 'frame': new}
            if name in where:  # where the file is now
                entry['path'] = frame_identity(where[name], new)['path']
            self.identities[new] = entry
        self.todo = [i for i in range(len(frames)) if i not in done]
        self.ok_rows = old[keep]
        if len(self.ok_rows):
            self.ok_rows['frame'] = np.array(
                [final[str(n)] for n in self.ok_rows['frame']], dtype=str)

    def _stands(self, rows, ok, old, want, entry, frame, new_name):
        """Whether the previous rows of a frame stand (else it is measured
        again, with a warning saying why when they were measured)."""
        if not np.all(ok[rows]):
            return False  # a failed frame is retried
        have = sorted(str(i) for i in np.asarray(old['id'][rows]))
        if have != want:
            self._warn(new_name, f'{self.label} holds {len(have)} row(s) of '
                       f'this frame, not one per star ({len(want)}): measured '
                       'again')
            return False
        now = None if isinstance(frame, NDData) else file_fingerprint(frame)
        then = (entry.get('size'), entry.get('mtime_ns'))
        if now is not None and None not in then and tuple(now) != then:
            self._warn(new_name, 'the file changed since it was measured '
                       '(size or modification time): measured again')
            return False
        return True

    def _keep_failed(self, old, r, name, entry):
        """A failed frame not in this run: its name, time and reason."""
        row = old[r]
        note = str(row['note']) if 'note' in old.colnames else ''
        when = None
        if not np.any(getattr(row['time'], 'mask', False)):
            when = (float(row['time'].jd1), float(row['time'].jd2))
        self.failed_names.append(name)
        self.failed.append(FrameResult.failed(
            str(row['error']), time=when, notes=[note] if note else [],
            fingerprint=(None if entry.get('size') is None
                         else (entry['size'], entry['mtime_ns']))))

    @staticmethod
    def _warn(name, text):
        warnings.warn(f'{name}: {text}', AstropyUserWarning, stacklevel=4)


class _Matcher:
    """
    This run's frame for an identity of the previous table: the same
    absolute path; else the same file reached by another path (its real
    path); else the same file moved (its name, size and modification time
    to the nanosecond) -- each only when one frame of this run has it.
    In-memory frames by name.
    """

    def __init__(self, frames, names):
        self.by_path, self.by_name = {}, {}
        self.by_real, self._moved = {}, None
        self.frames = frames
        for i, (frame, name) in enumerate(zip(frames, names, strict=True)):
            if isinstance(frame, NDData):
                self.by_name[name] = i
                continue
            path = os.path.abspath(os.fspath(frame))
            self.by_path[path] = i
            self.by_real.setdefault(os.path.realpath(path), []).append(i)

    def index(self, entry):
        path = entry.get('path')
        if path is None:
            return self.by_name.get(entry['frame'])
        if path in self.by_path:
            return self.by_path[path]
        found = self.by_real.get(os.path.realpath(path), [])
        if len(found) == 1:
            return found[0]
        if entry.get('size') is None or entry.get('mtime_ns') is None:
            return None
        found = self.moved().get((os.path.basename(path), entry['size'],
                                  entry['mtime_ns']), [])
        return found[0] if len(found) == 1 else None

    def moved(self):
        """(file name, size, mtime) -> indices of this run's files."""
        if self._moved is None:
            self._moved = {}
            for path, i in self.by_path.items():
                stamp = file_fingerprint(path)
                if stamp is not None:
                    key = (os.path.basename(path), *stamp)
                    self._moved.setdefault(key, []).append(i)
        return self._moved
