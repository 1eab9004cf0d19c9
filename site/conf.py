"""Sphinx configuration of the report site.

``python -m nstdream_utils.report`` copies this folder into a temporary source folder next to the
executed notebooks and the docs, then runs ``sphinx-build -b html`` on it. Nothing here loads a file
from the network: MathJax comes from the ``sphinx-mathjax-offline`` package, the theme ships its
fonts and scripts, and ipywidgets' scripts are left out.
"""

project = "Neural style transfer, then DeepDream"
html_title = project
extensions = ["myst_nb", "sphinx-mathjax-offline"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # papermill ran the notebooks already
nb_ipywidgets_js = {}  # require.js and the widget manager would come from a CDN
html_theme = "sphinx_book_theme"
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}
html_sidebars = {"**": ["navbar-logo.html", "sbt-sidebar-nav.html"]}  # the header has the search field
html_show_sourcelink = False
exclude_patterns = ["_build"]
# Links to files that are no page of the site (a README, a script) keep their text, without a target.
suppress_warnings = ["myst.xref_missing"]
