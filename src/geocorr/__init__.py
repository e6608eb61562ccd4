"""geocorr: 3D-aware semantic correspondence.

The package follows the data: ``geometry`` (pure numpy/torch primitives),
``data`` (datasets and the procedural benchmark), ``reconstruct`` (stage 1),
``features`` and ``matching`` (stage 2), ``labels`` and ``adapter`` (stage 3),
``evaluation`` and ``report``. ``cli`` only turns flags into settings.
"""

__version__ = "0.1.0"
