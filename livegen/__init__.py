"""livegen: real-time MIDI accompaniment from a stateful recurrent model."""

from pathlib import Path

__version__ = "0.1.0"

# A wheel carries the trainer as livegen/train (see pyproject.toml). In a source checkout or an
# editable install it stays at the top of the checkout; adding the checkout to this package's
# search path makes `livegen.train` resolve to it there too, so both layouts import alike.
_CHECKOUT = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "train").is_dir() and (_CHECKOUT / "train" / "__init__.py").is_file():
    __path__.append(str(_CHECKOUT))
