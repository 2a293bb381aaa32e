# Licensed under a 3-clause BSD style license - see LICENSE
"""
The names of the sky-level estimators, in a module that imports nothing:
what a batch checks its ``sky`` against without loading the estimators
(`ccdphot_ext.background.sky`, which holds them, imports photutils).
"""

__all__ = ['SKY_METHODS']

#: The estimators of a sky level (see the local-sky docs).
SKY_METHODS = ('sigma_clip', 'mean', 'median')
