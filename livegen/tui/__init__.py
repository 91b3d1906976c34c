"""The control panel: a Textual app that watches and steers the engine process."""

from livegen.tui.app import LivegenApp, run_tui
from livegen.tui.keymap import KEYMAP

__all__ = ["KEYMAP", "LivegenApp", "run_tui"]
