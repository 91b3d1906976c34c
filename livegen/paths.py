"""Where the shipped models, presets and demo files are, in a checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

import platformdirs

_PACKAGE = Path(__file__).resolve().parent


def shipped(kind: str) -> Path:
    """The folder of shipped `models` or `presets`, found on the package's search path the same
    way `livegen.train` is (livegen/__init__.py): inside the package in a wheel, at the top of
    the checkout otherwise."""
    import livegen

    for root in livegen.__path__:
        if (Path(root) / kind).is_dir():
            return Path(root) / kind
    return _PACKAGE / kind


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
