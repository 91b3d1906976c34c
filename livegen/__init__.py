"""livegen: real-time MIDI accompaniment from a stateful recurrent model."""

from pathlib import Path

__version__ = "0.1.0"

# The one way the top-level `train/`, `models/` and `presets/` reach the package: through this
# package's search path. A wheel carries them inside the package (pyproject.toml's force-include);
# in a checkout, and in an editable install (which runs the checkout), they sit beside it, and the
# checkout is appended to the search path here. `livegen.train` then imports in both layouts, and
# `livegen.paths.shipped` finds the models and presets by walking the same path.
_HERE = Path(__file__).resolve().parent
if not (_HERE / "train").is_dir() and (_HERE.parent / "train" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))
