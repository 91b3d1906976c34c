"""The panel's modal screens: help, pick from a list, prompt for text."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from livegen.tui.keymap import KEYMAP


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1,enter,space", "close", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 1))
        for _ in range(2):
            table.add_column(style="bold cyan", no_wrap=True)
            table.add_column()
        half = (len(KEYMAP) + 1) // 2
        for i in range(half):
            left = KEYMAP[i]
            right = KEYMAP[i + half] if i + half < len(KEYMAP) else ("", "")
            table.add_row(left[0], left[1], right[0], right[1])
        with VerticalScroll() as scroll:
            scroll.border_title = "livegen keys (Esc closes)"
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)


class PickScreen(ModalScreen[str | None]):
    """A list to pick from (presets, models), optionally with a path to type."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    PickScreen { align: center middle; }
    PickScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; }
    PickScreen OptionList { height: auto; max-height: 14; }
    """

    def __init__(self, title: str, options: list[tuple[str, str]], selected: str | None = None,
                 typed: str | None = None):
        super().__init__()
        self.title_text = title
        self.options = options
        self.selected = selected
        self.typed = typed

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self.title_text
            yield OptionList(*[Option(escape(label), id=value) for label, value in self.options])
            if self.typed is not None:
                yield Input(placeholder=self.typed)

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        for i, (_, value) in enumerate(self.options):
            if value == self.selected:
                option_list.highlighted = i
        option_list.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 60; max-width: 100%; height: auto;
        border: round $primary; background: $surface; }
    """

    def __init__(self, question: str, value: str = ""):
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question)
            yield Input(value=self.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


# -------------------------------------------------------------------------------------- app
