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


def user_models() -> Path:
    """Where `livegen train` puts models by default, and where a bare model name is looked
    up first."""
    return user_data() / "models"


def model_path(model: str) -> Path:
    """A preset's `model`: a model's name (letters, digits, - and _), found in the user models
    folder first and then among the shipped models (like presets: yours shadow a shipped one of
    the same name), or a file path."""
    if model.replace("-", "").replace("_", "").isalnum():
        mine = user_models() / f"{model}.pt"
        try:
            found = mine.is_file()
        except OSError:  # a name too long for the file system: not one of yours
            found = False
        return mine if found else shipped("models") / f"{model}.pt"
    return Path(model)
