"""The duet network (livegen.model.network): state shapes, the three uses, its config, and the
exported file matching the eager net."""

import pytest
import torch

from livegen.model import modelfile
from livegen.model.network import DuetModel, ModelConfig
from livegen.model.tokens import HUMAN_DIM, VOCAB
from tests.util import tiny_model


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_state_shapes_and_heads(tmp_path, cell):
    model, _ = tiny_model(tmp_path / "m.pt", cell=cell)
    state = model.init_state(1)
    assert state.shape == ((4 if cell == "lstm" else 2), 1, 24)
    human = torch.zeros(HUMAN_DIM)
    ctx = model.context(state, human, 0)
    assert model.voice_logits(ctx, 2).shape == (VOCAB,)
    assert model.lead(state, 5).shape == (VOCAB,)
    new = model.advance(state, human, torch.tensor([0, 1, 50]), 3)
    assert new.shape == state.shape and not torch.equal(new, state)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_exported_file_gives_the_eager_outputs_step_by_step(tmp_path, cell):
    """Teacher-forced forward of the eager model == the loaded file run one step at a time,
    each voice conditioned on the voices chosen before it."""
    model, path = tiny_model(tmp_path / "m.pt", cell=cell, seed=3)
    net, info = modelfile.load(path)
    assert [v.name for v in info.voices] == ["alto", "tenor", "bass"]
    g = torch.Generator().manual_seed(1)
    steps = 12
    human = (torch.rand(1, steps, HUMAN_DIM, generator=g) < 0.02).float()
    machine = torch.randint(0, VOCAB, (1, steps, 3), generator=g)
    pos = torch.randint(0, 32, (1, steps), generator=g)
    with torch.no_grad():
        lead, voices = model(human, machine, pos)
    state = net.init_state(1)
    for t in range(steps):
        p = int(pos[0, t])
        ctx = net.context(state, human[0, t], p)
        for k in info.order:
            torch.testing.assert_close(net.voice_logits(ctx, k), voices[0, t, k])
            ctx = net.voice_condition(ctx, k, int(machine[0, t, k]))
        torch.testing.assert_close(net.lead(state, p), lead[0, t])
        state = net.advance(state, human[0, t], machine[0, t], p)


def test_a_voice_sees_the_voices_chosen_before_it(tmp_path):
    model, _ = tiny_model(tmp_path / "m.pt")
    ctx = model.context(model.init_state(1), torch.zeros(HUMAN_DIM), 0)
    bass_first = model.order[0]
    after_low = model.voice_logits(model.voice_condition(ctx, bass_first, 2 + 40), 1)
    after_high = model.voice_logits(model.voice_condition(ctx, bass_first, 2 + 60), 1)
    assert not torch.allclose(after_low, after_high)


def test_the_config_rebuilds_the_network_and_bad_configs_are_named():
    cfg = ModelConfig(cell="lstm", hidden=16, layers=3, embed=4, dropout=0.0, order=[0, 2, 1])
    model = DuetModel(cfg)
    assert model.config == cfg and model.config is not cfg
    assert ModelConfig.from_dict(model.config.to_dict()) == cfg
    good = cfg.to_dict()
    for bad in ([1, 2], {"hidden": 16}, good | {"extra": 1}, good | {"hidden": 0},
                good | {"layers": 2.0}, good | {"cell": "rnn"}, good | {"dropout": 1.5},
                good | {"order": [0, 0, 1]}, good | {"order": "012"}):
        with pytest.raises(ValueError):
            ModelConfig.from_dict(bad)
