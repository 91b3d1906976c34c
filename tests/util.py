"""Small things tests make: a random-weight model file, melody files."""

from __future__ import annotations

from pathlib import Path

import torch

from livegen.midi.midifile import Note, Part, write_parts
from livegen.model import modelfile
from livegen.model.network import DuetModel, ModelConfig

VOICES = [("alto", 53, 77), ("tenor", 46, 69), ("bass", 34, 64)]


def tiny_model(path: Path, cell: str = "gru", hidden: int = 24, seed: int = 0
               ) -> tuple[DuetModel, Path]:
    torch.manual_seed(seed)
    model = DuetModel(ModelConfig(n_voices=3, cell=cell, hidden=hidden, layers=2, embed=8,
                                  dropout=0.0)).eval()
    info = modelfile.ModelInfo([modelfile.VoiceInfo(*v) for v in VOICES], [2, 1, 0], (59, 81),
                               {"data": "random weights (test)"})
    return model, modelfile.export(model, info, path)


def scale_melody(path: Path, bars: int = 2, bpm: float = 120.0) -> Path:
    """C major scale up and down in quarter notes."""
    pitches = [60, 62, 64, 65, 67, 69, 71, 72] * bars
    notes = [Note(p, i, i + 0.9, 90, 1) for i, p in enumerate(pitches[: bars * 4])]
    write_parts(path, [Part("melody", 1, 0, notes)], bpm, 4)
    return path
