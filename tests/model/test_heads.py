"""The numpy heads on the critical path against the model file's own scripted methods, and the
choice of a step's voices as a frame."""

import numpy as np
import pytest
import torch

from livegen.model import modelfile
from livegen.model.heads import PARALLEL, Heads, _Rules, strata, top_p_sample
from livegen.model.runtime import Runtime
from livegen.model.tokens import HOLD, HUMAN_DIM, PITCH0, REST, VOCAB
from tests.util import tiny_model


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    _, path = tiny_model(tmp_path_factory.mktemp("m") / "m.pt", seed=5)
    return path


def test_heads_match_the_scripted_methods(model):
    net, info = modelfile.load(model)
    weights = {k: v.numpy() for k, v in net.head_weights().items()}
    heads = Heads(weights, info.order)
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        for _ in range(20):
            state = torch.randn(net.init_state(1).shape, generator=g)
            idx = sorted(set(torch.randint(0, HUMAN_DIM, (3,), generator=g).tolist()))
            human = torch.zeros(HUMAN_DIM)
            human[idx] = 1.0
            base = net.context_base(state, 5)
            ctx_t = net.context_human(base, human)
            ctx_n = heads.context(base.numpy(), idx)
            np.testing.assert_allclose(ctx_n, ctx_t.numpy(), rtol=1e-5, atol=1e-5)
            for k in info.order:
                np.testing.assert_allclose(heads.logits(ctx_n, k),
                                           net.voice_logits(ctx_t, k).numpy(),
                                           rtol=1e-4, atol=1e-4)
                token = int(torch.randint(0, VOCAB, (1,), generator=g))
                ctx_t = net.voice_condition(ctx_t, k, token)
                ctx_n = ctx_n + heads.voice_cond[k * VOCAB + token]


def test_top_p_keeps_the_nucleus_and_follows_the_draw():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05] + [1e-9] * (VOCAB - 4)))
    assert top_p_sample(logits, 0.7, 0.0) == 0
    assert top_p_sample(logits, 0.7, 0.99) == 1  # 0.5 + 0.3 crosses 0.7: only two kept
    assert top_p_sample(logits, 1.0, 0.97) == 3
    masked = logits.copy()
    masked[0] = -np.inf
    assert all(top_p_sample(masked, 0.9, u) != 0 for u in np.linspace(0, 0.999, 50))


def test_staged_inputs_give_the_same_notes(model):
    """The input staging CUDA uses (device copies refreshed each step), run on the CPU."""
    runs = []
    for staged in (False, True):
        rt = Runtime(model, device="cpu", warmup=1, staged=staged)
        rng = np.random.default_rng(2)
        sounding = [-1, -1, -1]
        out = []
        for t in range(40):
            rt.set_human([60 + t % 7], [] if t % 2 else [55])
            tokens = rt.accompany(t % 16, 1.0, 0.95, rng.random(3).tolist(), sounding)
            out.append(tokens)
            sounding = [(tok - PITCH0) if tok >= PITCH0 else (s if tok == HOLD else -1)
                        for tok, s in zip(tokens, sounding, strict=True)]
            rt.advance(tokens, t % 16, (t + 1) % 16)
        runs.append(out)
    assert runs[0] == runs[1]
    assert any(tok != REST for step in runs[0] for tok in step)


def test_cuda_request_without_a_gpu_falls_back_to_the_cpu(model, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rt = Runtime(model, device="cuda", warmup=1)
    assert rt.device == "cpu"
    assert Runtime(model, device="auto", warmup=1).device == "cpu"


def test_each_candidate_draws_from_its_own_stratum():
    offsets = strata(8, 3)
    assert (offsets[0] == 0).all()  # candidate 0 is the model's own draw
    for k in range(3):  # every voice: each candidate in another eighth of [0, 1)
        assert sorted(offsets[:, k] * 8) == list(range(8))
    assert len({tuple(row) for row in offsets}) == 8


def frame_case(heads: Heads, rng: np.random.Generator):
    """A step where parallels are easy: every part a perfect interval from another at the last
    onset, the melody moving up a step, the voices forced to strike within a small span."""
    base = rng.normal(size=heads.voice_w.shape[2]).astype(np.float32)
    bias = np.full((3, VOCAB), -np.inf, dtype=np.float32)
    for k, (lo, hi) in enumerate(((62, 73), (55, 67), (45, 60))):
        bias[k, PITCH0 + lo:PITCH0 + hi + 1] = 0.0
    prev = [72, 65, 60, 53]  # melody, alto a fifth below, tenor an octave, bass a fifth lower
    return base, bias, prev, rng.random(3).tolist()


def test_a_frame_with_a_fault_gives_way_to_a_candidate_without(model):
    net, info = modelfile.load(model)
    heads = Heads({k: v.numpy() for k, v in net.head_weights().items()}, info.order)
    rng = np.random.default_rng(0)
    improved = 0
    for _ in range(60):
        base, bias, prev, u = frame_case(heads, rng)
        args = (base, [74], bias, 1.0, 1.0, u, [65, 60, 53], False, True, prev, 74)
        own = heads.sample(*args, candidates=1)
        chosen = heads.sample(*args)
        assert chosen == heads.sample(*args)  # the same draws, the same frame
        rules = _Rules([0, 1, 2], heads.order, prev, 74, True, True)
        fault = rules.fault(own, [t - PITCH0 for t in own])
        best = rules.fault(chosen, [t - PITCH0 for t in chosen])
        if fault == 0:
            assert chosen == own  # the model's own draw plays when it breaks no rule
        else:
            assert best <= fault and best < PARALLEL
            improved += best < fault
    assert improved >= 5


def test_a_voice_with_every_token_forbidden_rests(model):
    """The accompanist's rules can leave a voice nothing (a held note above the melody under a
    cadence's hold): it rests, and no NaN reaches the draw."""
    import warnings

    net, info = modelfile.load(model)
    heads = Heads({k: v.numpy() for k, v in net.head_weights().items()}, info.order)
    rng = np.random.default_rng(1)
    for _ in range(10):
        base, bias, prev, u = frame_case(heads, rng)
        bias[1, :] = -np.inf  # the tenor may do nothing at all
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tokens = heads.sample(base, [74], bias, 1.0, 0.9, u, [65, 60, 53], False, True,
                                  prev, 74)
        assert tokens[1] == REST
        assert all(0 <= t < VOCAB for t in tokens)
    assert top_p_sample(np.full(VOCAB, -np.inf), 0.9, 0.5) == REST
