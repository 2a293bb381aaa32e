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

exclude_patterns = ['_build', '**.ipynb_checkpoints']
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
