# Licensed under a 3-clause BSD style license - see LICENSE
"""
Export apertures to DS9 region files through the optional
`regions <https://astropy-regions.readthedocs.io>`_ package
(``pip install 'ccdphot_ext[regions]'``).

Pixel regions are written in DS9's ``image`` frame (1-based: the
``regions`` package adds 1 to photutils' 0-based centres); with a celestial
WCS they are written on the sky (``icrs``/``fk5`` as the WCS says).

With a photometry table's ``flags`` the regions show what was measured:
unflagged apertures green, flagged ones red with the flag value in their
label and one DS9 tag per flag bit (``tag={truncated}``, ...), so DS9's
"Region > Groups" selects them by reason.
"""

import os

import numpy as np
from photutils.aperture import Aperture

from ..io.wcs import celestial_wcs
from ..utils.files import atomic_write
from .skybox import SkyBoxAperture

__all__ = ['aperture_regions', 'write_ds9', 'FLAG_COLORS']

#: DS9 colours of unflagged and flagged apertures when ``flags`` is given.
FLAG_COLORS = {'ok': 'green', 'flagged': 'red'}

_EXTRA = "pip install 'ccdphot_ext[regions]'"


def _import_regions():
    try:
        import regions
    except ImportError as exc:
        raise ImportError('exporting DS9 regions needs the optional '
                          f'"regions" package: {_EXTRA}') from exc
    return regions


def _as_list(apertures):
    if isinstance(apertures, (list, tuple)):
        if not apertures:
            raise ValueError('apertures is empty')
        return list(apertures)
    return [apertures]


def _flag_tags():
    """Bit value -> short DS9 tag, from the ``FLAG_*`` names."""
    from .. import flags as flag_module

    return {getattr(flag_module, name): name[5:].lower()
            for name in flag_module.__all__
            if name.startswith('FLAG_') and isinstance(
                getattr(flag_module, name), int)}


def _show_flags(regs, flags, labels):
    """Colour, label and tag each region by its flag value."""
    flags = np.atleast_1d(np.asarray(flags))
    if flags.shape != (len(regs),) or flags.dtype.kind not in 'iu':
        raise ValueError(f'flags must hold one integer per aperture position '
                         f'({len(regs)}), got {flags.shape} {flags.dtype}')
    tags = _flag_tags()
    for i, (reg, value) in enumerate(zip(regs, flags.tolist(), strict=True)):
        reg.visual['color'] = FLAG_COLORS['flagged' if value else 'ok']
        if value:
            reg.meta['tag'] = [name for bit, name in sorted(tags.items())
                               if value & bit] or [f'flags{value}']
            text = labels[i] if labels is not None else ''
            reg.meta['text'] = f'{text} [flags {value}]'.strip()


def aperture_regions(apertures, *, wcs=None, labels=None, color=None,
                     flags=None):
    """
    Convert apertures to a `regions.Regions` list, one region per position.

    Parameters
    ----------
    apertures : aperture or list of apertures
        A `~ccdphot_ext.BoxAperture`, any photutils aperture (pixel or sky:
        circles, ellipses, rectangles, annuli) or a `SkyBoxAperture`, or a
        non-empty list or tuple of them.
    wcs : `~astropy.wcs.WCS` or `~astropy.nddata.NDData`, optional
        A celestial WCS (or a frame holding one): pixel apertures are then
        converted to sky regions (a `SkyBoxAperture` needs it). None
        (default): pixel regions in DS9's 1-based ``image`` frame.
    labels : sequence of str, optional
        One text label per aperture position (e.g. a photometer table's
        ``id``); None (default): no labels.
    color : str, optional
        The DS9 colour of every region (e.g. ``'cyan'``); None (default):
        DS9's default. With ``flags``, the flag colours win.
    flags : sequence of int, optional
        One flag value per position (a `~ccdphot_ext.photometer` table's
        ``flags``): unflagged regions are drawn in ``FLAG_COLORS['ok']``
        (green), flagged ones in ``FLAG_COLORS['flagged']`` (red) with
        ``[flags N]`` in their label and one DS9 tag per bit set. None
        (default): no flag colours.

    Returns
    -------
    regions : `regions.Regions`
        One pixel region per aperture position (sky regions with ``wcs``),
        in the order of the apertures and their positions.

    Raises
    ------
    ImportError
        If the optional ``regions`` package is not installed.
    TypeError
        If an aperture is not a photutils aperture or a `SkyBoxAperture`,
        or ``color`` is not a string.
    ValueError
        If ``apertures`` is empty, ``wcs`` has no celestial axes, a
        `SkyBoxAperture` comes without ``wcs``, or ``labels`` or ``flags``
        do not hold one entry per position.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture
    >>> from ccdphot_ext.aperture.regions import aperture_regions
    >>> boxes = BoxAperture([(501.5, 167.5), (40.0, 60.0)], 20, 20)
    >>> regs = aperture_regions(boxes, labels=['1', '2'])
    >>> print(regs.serialize(format='ds9'))
    # Region file format: DS9 astropy/regions
    image
    box(502.50000000,168.50000000,20.00000000,20.00000000,0.00000000) # text={1}
    box(41.00000000,61.00000000,20.00000000,20.00000000,0.00000000) # text={2}

    With the flags of a photometry table, flagged apertures are red:

    >>> regs = aperture_regions(boxes, labels=['1', '2'], flags=[0, 9])
    >>> for line in regs.serialize(format='ds9').splitlines()[-2:]:
    ...     print(line.split(' # ')[1])
    text={1} color=green
    text={2 [flags 9]} tag={truncated} tag={nonpositive_flux} color=red
    """
    regions = _import_regions()
    sky_wcs = None
    if wcs is not None:
        sky_wcs = celestial_wcs(wcs)
        if sky_wcs is None:
            raise ValueError('wcs has no celestial axes: cannot write sky '
                             'regions')
    out = [reg for ap in _as_list(apertures)
           for reg in _to_regions(ap, sky_wcs, regions)]
    labels = _set_labels(out, labels)
    if color is not None:
        if not isinstance(color, str):
            raise TypeError(f'color must be a str, got {color!r}')
        for reg in out:
            reg.visual['color'] = color
    if flags is not None:
        _show_flags(out, flags, labels)
    return regions.Regions(out)


def _to_regions(ap, sky_wcs, regions):
    """The regions of one aperture (one per position), on the sky when
    ``sky_wcs`` is given."""
    from photutils.aperture import aperture_to_region

    if isinstance(ap, SkyBoxAperture):
        if sky_wcs is None:
            raise ValueError('a SkyBoxAperture needs wcs= to be written '
                             'as a region')
        ap = ap.to_pixel(sky_wcs)
    if not isinstance(ap, Aperture):
        raise TypeError('apertures must be BoxAperture, SkyBoxAperture '
                        'or photutils apertures, got '
                        f'{type(ap).__name__}')
    reg = aperture_to_region(ap)
    regs = list(reg) if isinstance(reg, regions.Regions) else [reg]
    if sky_wcs is not None:
        regs = [r.to_sky(sky_wcs) if isinstance(r, regions.PixelRegion)
                else r for r in regs]
    return regs


def _set_labels(regs, labels):
    """Put one text label on each region; the labels as strings (or
    None)."""
    if labels is None:
        return None
    labels = [str(t) for t in np.atleast_1d(np.asarray(labels))]
    if len(labels) != len(regs):
        raise ValueError(f'labels has {len(labels)} entries for '
                         f'{len(regs)} aperture positions')
    for reg, text in zip(regs, labels, strict=True):
        reg.meta['text'] = text
    return labels


def write_ds9(apertures, path, *, wcs=None, labels=None, color=None,
              flags=None, overwrite=False):
    """
    Write apertures to a DS9 region file.

    The file is written to a temporary name beside ``path`` and renamed, so
    an existing file is never left half-written.

    Parameters
    ----------
    apertures : aperture or list of apertures
        A `~ccdphot_ext.BoxAperture`, any photutils aperture (pixel or sky:
        circles, ellipses, rectangles, annuli) or a `SkyBoxAperture`, or a
        non-empty list or tuple of them.
    path : str or path-like
        The ``.reg`` file to write.
    wcs : `~astropy.wcs.WCS` or `~astropy.nddata.NDData`, optional
        A celestial WCS (or a frame holding one): the regions are then
        written on the sky (a `SkyBoxAperture` needs it). None (default):
        pixel regions in DS9's 1-based ``image`` frame.
    labels : sequence of str, optional
        One text label per aperture position (e.g. a photometer table's
        ``id``); None (default): no labels.
    color : str, optional
        The DS9 colour of every region (e.g. ``'cyan'``); None (default):
        DS9's default. With ``flags``, the flag colours win.
    flags : sequence of int, optional
        One flag value per position (a `~ccdphot_ext.photometer` table's
        ``flags``): flagged apertures are drawn red with ``[flags N]`` in
        their label and one DS9 tag per bit set, the others green (see
        `aperture_regions`). None (default): no flag colours.
    overwrite : bool, optional
        Whether to replace an existing file (default False).

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ImportError
        If the optional ``regions`` package is not installed.
    TypeError, ValueError
        For apertures or options `aperture_regions` refuses.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from photutils.aperture import CircularAperture
    >>> from ccdphot_ext.aperture.regions import write_ds9
    >>> path = Path(tempfile.mkdtemp()) / 'stars.reg'
    >>> _ = write_ds9(CircularAperture([(10, 20), (30, 40)], r=5), path)
    >>> print(path.read_text().splitlines()[-1])
    circle(31.00000000,41.00000000,5.00000000)
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists (pass overwrite=True to '
                              'replace it)')
    text = aperture_regions(apertures, wcs=wcs, labels=labels, color=color,
                            flags=flags).serialize(format='ds9')

    def write(tmp):
        with open(tmp, 'w', encoding='utf-8') as fh:
            fh.write(text)

    atomic_write(path, write, label='path')
    return path
