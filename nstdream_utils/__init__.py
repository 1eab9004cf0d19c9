"""nstdream_utils — neural style transfer, then DeepDream, on real ImageNet networks.

Modules are named after concepts (``docs/api.md``). Importing the package does not import TensorFlow.
"""

__version__ = "0.1.0"
