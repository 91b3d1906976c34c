"""livegen: real-time MIDI accompaniment from a stateful recurrent model."""

from pathlib import Path

__version__ = "0.1.0"

# A wheel carries the trainer as livegen/train (see pyproject.toml). In a source checkout or an
# editable install it stays at the top of the checkout; adding the checkout to this package's
# search path makes `livegen.train` resolve to it there too, so both layouts import alike.
_HERE = Path(__file__).resolve().parent
if not (_HERE / "train").is_dir() and (_HERE.parent / "train" / "__init__.py").is_file():
    __path__.append(str(_HERE.parent))
