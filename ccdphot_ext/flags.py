# Licensed under a 3-clause BSD style license - see LICENSE
"""
Bit flags set on every photometry row.

The values are part of the public contract and never change
meaning. Combine them with ``|`` and test them with ``&``.
"""

import math
import numbers

__all__ = ['FLAG_DESCRIPTIONS', 'FLAG_TRUNCATED', 'FLAG_BAD_PIXELS',
           'FLAG_SATURATED', 'FLAG_NONPOSITIVE_FLUX',
           'FLAG_EMPTY_THRESHOLD', 'FLAG_RESIDUAL_BACKGROUND',
           'FLAG_SKY_ANNULUS', 'FLAG_SMALL_APERTURE', 'FLAG_PSF_MISMATCH',
           'FLAG_NOT_STAR_LIKE', 'FLAG_SHARP_PIXEL', 'FLAG_NO_SOURCE_TERM',
           'decode_flags']

#: The aperture extends past the frame edge (pixel i spans i-0.5 ... i+0.5);
#: the sum covers the in-frame part only.
FLAG_TRUNCATED = 1
#: Masked, NaN or inf pixels fell inside the aperture; they are excluded,
#: ``n_pix`` counts the pixels used and the flux is *not* scaled up.
FLAG_BAD_PIXELS = 2
#: A pixel inside the aperture is at or above the saturation level, or
#: holds a saturation bit of the frame's DQ array (`~ccdphot_ext.io.dq`).
FLAG_SATURATED = 4
#: The flux is zero or negative; the magnitude is undefined (NaN).
FLAG_NONPOSITIVE_FLUX = 8
#: The threshold mask selected no pixel inside the aperture.
FLAG_EMPTY_THRESHOLD = 16
#: A global sky is unsafe here: the background left in the aperture outside
#: the threshold mask is significant, or the frame's background under the
#: aperture differs from the whole-frame sky level enough to bias the flux
#: (the coarse map a `~ccdphot_ext.SkyEstimate.from_image` sky keeps; see
#: `~ccdphot_ext.gradient_check`). Also set where the light of the frame's
#: sources lifts a Background2D map's level enough to bias the flux (a map
#: made without the frame, ``from_background2d(bkg)``; see
#: `~ccdphot_ext.photometry.residual.check_map_sky`), where a Background2D
#: mesh is under three times the aperture's diameter or the map under it
#: was filled from the meshes around its star's source mask
#: (`~ccdphot_ext.photometry.residual.check_small_mesh`), and where the
#: apertures measured cover every pixel a whole-frame level used, which
#: then keeps their stars' light
#: (`~ccdphot_ext.SkyEstimate.without_apertures`), and where a crowded
#: frame's source mask leaves too little sky to measure the light of the
#: stars too faint for it, which lifts a whole-frame level
#: (`~ccdphot_ext.background.globalsky.unseen_sky_note`), or may lift it
#: by up to its warned bound over the aperture by more than 0.05 flux
#: errors (`~ccdphot_ext.photometry.residual.crowding_lift`), and where a
#: whole-frame level measured again without the apertures rests on the
#: few pixels they leave, which the frame's coarse background puts far
#: off its mean (`~ccdphot_ext.background.skylift.remnant_note`).
FLAG_RESIDUAL_BACKGROUND = 32
#: The sky annulus is doubtful: another star's aperture reaches into it
#: (its pixels left out when the apertures are excluded, its light beyond
#: them not), its own aperture covers pixel centres of it (measured without
#: excluding the apertures), or fewer than half of its pixels were usable
#: (masked, NaN, apertures, clipped). Any sky (whole-frame, annulus, map)
#: is doubtful, too, where its per-pixel std is 0 (the error bar then
#: leaves out the sky noise) or its level came from fewer than 5 pixels
#: (`~ccdphot_ext.SkyEstimate` warns when it is made), and a whole-frame
#: sky where the frame's pixel noise differs from its one ``std`` by more
#: than 10% (uneven depth, vignetting: the error bar is off by as much;
#: `~ccdphot_ext.background.noisevariation.check_sky_noise`). Also set where
#: the background curves about the star (a galaxy's bulge, a nebula) enough
#: that an annulus sky misses the aperture's background by a significant
#: part of the flux error
#: (`~ccdphot_ext.background.annuluscurvature.check_annulus_curvature`).
#: A circular annulus holding a star the apertures do not list keeps it
#: too when its level is measured again without the star's pixels (a
#: neighbour was there; its light beyond the mask is a model's estimate).
FLAG_SKY_ANNULUS = 64
#: The box holds clearly less than the plateau of the curve of growth of
#: the frame's bright isolated stars (`~ccdphot_ext.find_stars` checks the
#: box it suggests: below 90% of the plateau, the flux is an underestimate).
FLAG_SMALL_APERTURE = 128
#: Optimal extraction: the star does not look like the PSF that weighted it
#: (the PSF-weighted fluxes of its core and of its wings disagree, or the
#: fitted model's chi-square is beyond its 0.1% tail), or the frame's
#: stars show the PSF's width or profile is not theirs; the flux is
#: biased. Also set where the frame's stars cannot confirm the PSF's
#: width well enough for this flux (no star to measure it on, or a width
#: measured too roughly; `~ccdphot_ext.optimal_extraction`).
FLAG_PSF_MISMATCH = 256
#: The position came from a `~ccdphot_ext.find_stars` detection that is not
#: like a star (``star_like`` False, not saturated): sharper than a star (a
#: cosmic-ray hit, a hot pixel), elongated (a blend, a trail, a bad column
#: merged with a star), or wider or narrower than the stars. Saturated
#: stars are stars and do not get it (their rows get 4). See
#: `~ccdphot_ext.star_like_flags`.
FLAG_NOT_STAR_LIKE = 512
#: The aperture holds a pixel sharper than the frame's stars: a cosmic-ray
#: hit or a hot pixel a raw frame keeps. It is summed as it is (an
#: undersampled star's core is never taken out of its sum); the flux and
#: a blank aperture's sum read high by its light. A pixel at least 5 pixel
#: noises above the median of the pixels two away and above its 8
#: neighbours is one where they hold significantly less light than the
#: frame's sharpest stars put there (or, with fewer than 5 bright stars to
#: measure, a star of FWHM 0.9 px); on a frame whose faint peaks are
#: mostly such hits, each faint peak whose neighbours hold less than half
#: of a star's. `~ccdphot_ext.photometer` warns once per frame with their
#: count: clean the frame (``ccdproc.cosmicray_lacosmic``) or pass a mask
#: of them. `~ccdphot_ext.ApertureNoise` leaves them out of its blank
#: apertures.
FLAG_SHARP_PIXEL = 1024
#: No gain is known, so the error bar leaves out the source's photon noise
#: (``var_source`` NaN), and the star is bright enough against the sky that
#: the missing term could raise the error by more than 5%: its largest
#: value the sky allows, the flux over the smallest gain the sky's level
#: and pixel variance admit (``flux * sky_std**2 / sky``, the gain at which
#: all of the sky's noise were photon noise), is over a tenth of the row's
#: variance. A sky level at or below 0 (a sky-subtracted frame) bounds
#: nothing: every row gets it whose flux is significant (over 3 errors;
#: fainter ones are not judged). Pass the gain
#: (``gain=``, a GAIN card, ``--gain``) to measure the term
#: (`~ccdphot_ext.photometry.budget.source_term_doubt`).
FLAG_NO_SOURCE_TERM = 2048

FLAG_DESCRIPTIONS = {
    FLAG_TRUNCATED: 'aperture truncated by the frame edge',
    FLAG_BAD_PIXELS: 'masked/NaN/inf pixels inside (excluded)',
    FLAG_SATURATED: 'saturated pixel inside',
    FLAG_NONPOSITIVE_FLUX: 'flux <= 0 (magnitude undefined)',
    FLAG_EMPTY_THRESHOLD: 'threshold mask empty',
    FLAG_RESIDUAL_BACKGROUND: 'significant residual background (a global '
                              'sky is unsafe here)',
    FLAG_SKY_ANNULUS: "sky annulus overlaps the aperture or a neighbour's, "
                      "holds a star's light, or is mostly masked; or the "
                      'sky std is 0, from fewer than 5 pixels, or off the '
                      "frame's local noise; or the background curves about "
                      'the star',
    FLAG_SMALL_APERTURE: 'box below the curve of growth plateau',
    FLAG_PSF_MISMATCH: 'star does not match the PSF of the optimal '
                       "extraction, or the frame's stars do not confirm "
                       'its width',
    FLAG_NOT_STAR_LIKE: 'detection not like a star (sharp, elongated, or '
                        'wider or narrower than the stars)',
    FLAG_SHARP_PIXEL: "a pixel sharper than the frame's stars inside (a "
                      'cosmic ray or a hot pixel, summed)',
    FLAG_NO_SOURCE_TERM: 'no gain: the missing source photon noise could '
                         'raise the error by over 5%',
}



#: the largest bit flags: a signed 64-bit integer (the flags column)
MAX_FLAGS = 2 ** 63 - 1


def flag_bits(value, name='flags'):
    """
    ``value`` as bit flags: a whole non-negative number of at most 63 bits
    (9.0 is 9); a bool, a text, a fraction, NaN or inf is a TypeError, a
    negative or larger number a ValueError, each naming ``name``. (The
    one number rule of ``ccdphot_ext.utils.numbers`` for flags, here with
    them: this module imports nothing of the package.)

    Examples
    --------
    >>> from ccdphot_ext.flags import flag_bits
    >>> flag_bits(9.0)
    9
    >>> flag_bits(float('inf'))
    Traceback (most recent call last):
    ...
    TypeError: flags must be an integer, got inf
    """
    boolean = isinstance(value, bool) or type(value).__name__ == 'bool_'
    if isinstance(value, numbers.Integral) and not boolean:
        out = int(value)
    else:
        number = None
        if not (boolean or isinstance(value, (str, bytes))):
            try:
                number = float(value)
            except (TypeError, ValueError):
                pass
        if (number is None or not math.isfinite(number)
                or number != int(number)):
            raise TypeError(f'{name} must be an integer, got {value!r}')
        out = int(number)
    if out < 0:
        raise ValueError(f'{name} must be non-negative, got {out}')
    if out > MAX_FLAGS:
        raise ValueError(f'{name} must be at most 2**63 - 1 (a 64-bit flags '
                         f'column), got {out}')
    return out


def decode_flags(flags):
    """
    Translate a flag value into the list of its descriptions.

    Parameters
    ----------
    flags : int
        A combination of the ``FLAG_*`` bit values.

    Returns
    -------
    descriptions : list of str
        One entry per bit set, in increasing bit order (bits without a
        ``FLAG_*`` name are left out; empty for 0).

    Raises
    ------
    TypeError
        If ``flags`` is not a whole number (a fraction, NaN, text).
    ValueError
        If ``flags`` is negative.

    Examples
    --------
    >>> from ccdphot_ext.flags import decode_flags
    >>> decode_flags(1 | 8)
    ['aperture truncated by the frame edge', 'flux <= 0 (magnitude undefined)']
    """
    flags = flag_bits(flags, 'flags')
    return [text for bit, text in FLAG_DESCRIPTIONS.items() if flags & bit]
