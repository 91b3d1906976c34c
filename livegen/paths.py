"""Where the shipped models, presets and demo files are, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def shipped(kind: str) -> Path:
    """The folder of shipped `models` or `presets`: inside the package when installed from a
    wheel, at the top of the checkout otherwise."""
    inside = _PACKAGE / kind
    return inside if inside.is_dir() else _PACKAGE.parent / kind


def demo_melody() -> Path:
    return _PACKAGE / "data" / "demo_melody.mid"


def user_presets() -> Path:
    return Path(platformdirs.user_config_dir("livegen")) / "presets"


def user_data() -> Path:
    return Path(platformdirs.user_data_dir("livegen"))


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("livegen"))


def model_path(model: str) -> Path:
    """A preset's `model`: a shipped model's name (letters, digits, - and _) or a file path."""
    if model.replace("-", "").replace("_", "").isalnum():
        return shipped("models") / f"{model}.pt"
    return Path(model)
