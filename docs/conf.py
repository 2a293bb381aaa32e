# Sphinx configuration for ccdphot_ext (built with sphinx-astropy).
import datetime
from importlib.metadata import version as _version

from sphinx_astropy.conf.v2 import *  # noqa: F403

project = 'ccdphot_ext'
author = 'ccdphot_ext developers'
copyright = f'{datetime.date.today().year}, {author}'
release = _version('ccdphot_ext')
version = '.'.join(release.split('.')[:2])

# The build machines have no internet: no intersphinx inventories.
intersphinx_mapping = {}  # noqa: F405
extensions = [ext for ext in extensions  # noqa: F405
              if ext != 'sphinx.ext.intersphinx']
extensions += ['matplotlib.sphinxext.plot_directive']

exclude_patterns = ['_build', '_generated', '**.ipynb_checkpoints']
html_theme_options = {
    'github_url': 'https://github.com/ccdphot/ccdphot_ext',
    'use_edit_page_button': False,
}
html_title = f'{project} v{release}'
html_static_path = []
automodapi_toctreedirnm = 'api'
numpydoc_show_class_members = False
plot_include_source = True
plot_html_show_source_link = False
plot_formats = ['png']


def _resolve_public_name(app, env, node, contnode):
    """Point ``ccdphot_ext.name`` (and old module paths) at the API page.

    The API reference documents each object once, under the subpackage
    that owns it (``ccdphot_ext.photometry.photometer``); users and these
    docs also write the top-level name ``ccdphot_ext.photometer`` or the
    defining module's path. Retarget those to the documented name.
    """
    import importlib

    target = node.get('reftarget', '')
    if node.get('refdomain') != 'py' or not target.startswith('ccdphot_ext.'):
        return None
    name = target.rsplit('.', 1)[-1]
    py = env.get_domain('py')
    for sub in ('flags', 'io', 'aperture', 'background', 'photometry',
                'detection', 'analysis', 'batch', 'visualization',
                'datasets', 'utils'):
        module = importlib.import_module(f'ccdphot_ext.{sub}')
        new = f'ccdphot_ext.{sub}.{name}'
        if new != target and hasattr(module, name) and new in py.objects:
            return py.resolve_xref(env, node['refdoc'], app.builder,
                                   node['reftype'], new, node, contnode)
    return None


def _write_html_budget(app):
    """Render, at build time, the HTML that Jupyter shows for the
    tutorial's measurement (``_repr_html_``), for a ``.. raw:: html``."""
    import os
    import warnings

    from ccdphot_ext import (NOTEBOOK_BOXES, BoxAperture, DetectorParameters,
                             SkyEstimate, measure, sample_frame)

    ccd = sample_frame()
    sky = SkyEstimate.from_image(ccd.data, method='mean',
                                 uncertainty=ccd.uncertainty)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    with warnings.catch_warnings():
        # the tutorial shows this warning where it measures the same star
        warnings.filterwarnings('ignore', message='the background varies')
        result = measure(ccd.data, box, sky, gain=2.23,
                         detector=DetectorParameters(read_noise=12.0))
    folder = os.path.join(app.srcdir, '_generated')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'tutorial_budget.html'), 'w',
              encoding='utf-8') as fh:
        fh.write(result._repr_html_() + '\n')


def setup(app):
    app.connect('missing-reference', _resolve_public_name)
    app.connect('builder-inited', _write_html_budget)
