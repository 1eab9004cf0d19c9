"""nstdream_utils — neural style transfer, then DeepDream, on real ImageNet networks.

Modules are named after concepts (see ``docs/api.md``): ``losses``, ``images``, ``presets``,
``weights``, ``models``, ``nst``, ``dream``, ``pipeline``, ``data``, ``plotting``, ``batch``, ``report``.
Importing the package does not import TensorFlow; the modules that need it import it themselves.
"""

__version__ = "0.1.0"
