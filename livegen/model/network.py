"""The duet network: one stateful recurrent net over both parts, with three cheap heads.

    accompany  context(state, human_t, pos_t), then voice by voice: voice_logits(c, k), and
               voice_condition(c, k, token) so the next voice sees the one just chosen
    lead       lead(state, pos_t): logits of the human's top-note token at step t
    advance    advance(state, human_t, machine_t, pos_t): the state after step t

`state` is the recurrent state after step t-1 (GRU: [layers, 1, H]; LSTM: h and c stacked,
[2*layers, 1, H]). `forward` runs a whole sequence with teacher forcing for training. Every
method is TorchScript-compatible: the trainer runs this module eagerly, and `modelfile.load`
builds it from a model file's config and weights and scripts it, so the code that runs is
always this module's, never a model file's.

This is the one definition of the network, in the package so that the runtime builds it without
the trainer; `ModelConfig` is everything needed to rebuild it, and a model file stores it.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Self

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from livegen.model.tokens import HUMAN_DIM, N_POSITIONS, VOCAB


@dataclass
class ModelConfig:
    n_voices: int = 3
    cell: str = "gru"  # "gru" or "lstm"
    hidden: int = 256
    layers: int = 2
    embed: int = 48  # machine-token embedding fed to the recurrent input, per voice
    dropout: float = 0.1
    # the order voices are chosen in within a step (indices into the voices, which are listed
    # top to bottom): bass first, as a harmonizer writes it
    order: list[int] = field(default_factory=lambda: [2, 1, 0])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: object) -> Self:
        """The config `to_dict` wrote, checked field by field; ValueError says what is wrong."""
        if not isinstance(d, dict):
            raise ValueError("the network config is not a mapping")
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"the network config has fields {sorted(map(str, d))}, not "
                             f"{sorted(names)}")
        ints = [d[k] for k in ("n_voices", "hidden", "layers", "embed")]
        if not all(type(x) is int and x > 0 for x in ints):
            raise ValueError("the network's sizes are not positive integers")
        if d["cell"] not in ("gru", "lstm"):
            raise ValueError(f"the network's cell {d['cell']!r} is not 'gru' or 'lstm'")
        if type(d["dropout"]) not in (int, float) or not 0.0 <= d["dropout"] < 1.0:
            raise ValueError(f"the network's dropout {d['dropout']!r} is not in [0, 1)")
        order = d["order"]
        if not isinstance(order, list) or sorted(order) != list(range(d["n_voices"])):
            raise ValueError(f"the network's voice order {order!r} does not list each of its "
                             f"{d['n_voices']} voices once")
        return cls(n_voices=d["n_voices"], cell=d["cell"], hidden=d["hidden"],
                   layers=d["layers"], embed=d["embed"], dropout=float(d["dropout"]),
                   order=[int(i) for i in order])


class DuetModel(nn.Module):
    __jit_ignored_attributes__ = ["config"]  # plain Python, for export; not part of the script
    is_lstm: Final[bool]
    layers: Final[int]
    n_voices: Final[int]
    hidden: Final[int]
    vocab: Final[int]
    order: list[int]

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if sorted(cfg.order) != list(range(cfg.n_voices)):
            raise ValueError(f"order {cfg.order} must list each of the {cfg.n_voices} voices once")
        if cfg.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', not {cfg.cell!r}")
        h, v = cfg.hidden, cfg.n_voices
        self.config = ModelConfig(**cfg.to_dict())  # a copy: what a model file stores
        self.n_voices = v
        self.vocab = VOCAB
        self.hidden = h
        self.layers = cfg.layers
        self.is_lstm = cfg.cell == "lstm"
        self.order = list(cfg.order)
        # recurrent input: the finished frame of a step
        self.in_human = nn.Linear(HUMAN_DIM, h)
        self.in_pos = nn.Embedding(N_POSITIONS, h)
        self.in_machine = nn.Embedding(v * VOCAB, cfg.embed)
        self.in_machine_proj = nn.Linear(v * cfg.embed, h, bias=False)
        rnn = nn.LSTM if self.is_lstm else nn.GRU
        self.rnn = rnn(h, h, cfg.layers, batch_first=True,
                       dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        # heads read the state after t-1 plus what is known of step t
        self.ctx_state = nn.Linear(h, h)
        self.ctx_human = nn.Linear(HUMAN_DIM, h, bias=False)
        self.ctx_pos = nn.Embedding(N_POSITIONS, h)
        self.voice_w = nn.Parameter(torch.randn(v, VOCAB, h) * h ** -0.5)
        self.voice_b = nn.Parameter(torch.zeros(v, VOCAB))
        self.voice_cond = nn.Parameter(torch.randn(v * VOCAB, h) * 0.02)
        self.lead_state = nn.Linear(h, h)
        self.lead_pos = nn.Embedding(N_POSITIONS, h)
        self.lead_out = nn.Linear(h, VOCAB)
        self.drop = nn.Dropout(cfg.dropout)
        self.register_buffer("voice_offsets", torch.arange(v) * VOCAB, persistent=False)

    # ------------------------------------------------------------ training: a whole sequence

    def forward(self, human: Tensor, machine: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher forcing. human [B,T,256] float, machine [B,T,V] tokens, positions [B,T].
        Returns lead logits [B,T,VOCAB] and voice logits [B,T,V,VOCAB]."""
        b, t, _ = human.shape
        x = self._frame(human, machine, positions)
        out, _ = self.rnn(x)
        top0 = self._top(self.init_state(b))  # [B, H]
        prev = torch.cat([top0.unsqueeze(1), out[:, :-1]], dim=1)  # state after t-1
        prev = self.drop(prev)
        lead = self.lead_out(torch.relu(self.lead_state(prev) + self.lead_pos(positions)))
        ctx = self.ctx_state(prev) + self.ctx_human(human) + self.ctx_pos(positions)
        voice_logits: list[Tensor] = [torch.empty(0)] * self.n_voices
        for k in self.order:
            voice_logits[k] = F.linear(torch.relu(ctx), self.voice_w[k], self.voice_b[k])
            ctx = ctx + self.voice_cond[k * self.vocab + machine[:, :, k]]
        return lead, torch.stack(voice_logits, dim=2)

    def _frame(self, human: Tensor, machine: Tensor, positions: Tensor) -> Tensor:
        emb = self.in_machine(machine + self.voice_offsets)  # [..., V, E]
        emb = emb.flatten(-2)
        return torch.relu(self.in_human(human) + self.in_pos(positions)
                          + self.in_machine_proj(emb))

    def _top(self, state: Tensor) -> Tensor:
        """The top layer's hidden output, [B, H]."""
        return state[self.layers - 1]

    # ------------------------------------------------------------ live use: one step at a time

    @torch.jit.export
    def init_state(self, batch: int = 1) -> Tensor:
        rows = 2 * self.layers if self.is_lstm else self.layers
        return torch.zeros(rows, batch, self.hidden, device=self.voice_b.device)

    @torch.jit.export
    def context(self, state: Tensor, human: Tensor, pos: int) -> Tensor:
        """Accompany, first part: the context for voice choice at step t. human [256]."""
        return self.context_human(self.context_base(state, pos), human)

    @torch.jit.export
    def context_base(self, state: Tensor, pos: int) -> Tensor:
        """The part of the context known before step t's human frame (computed off the
        critical path, right after `advance`)."""
        return self.ctx_state(state[self.layers - 1, 0]) + self.ctx_pos.weight[pos]

    @torch.jit.export
    def context_human(self, base: Tensor, human: Tensor) -> Tensor:
        return base + self.ctx_human(human)

    @torch.jit.export
    def voice_logits(self, ctx: Tensor, k: int) -> Tensor:
        return F.linear(torch.relu(ctx), self.voice_w[k], self.voice_b[k])

    @torch.jit.export
    def voice_condition(self, ctx: Tensor, k: int, token: int) -> Tensor:
        return ctx + self.voice_cond[k * self.vocab + token]

    @torch.jit.export
    def head_weights(self) -> dict[str, Tensor]:
        """The accompany heads as plain matrices, for a runtime that evaluates them itself:
        context = base + ctx_human @ human; logits_k = voice_w[k] @ relu(context) + voice_b[k];
        context += voice_cond[k * VOCAB + token] after voice k is chosen."""
        return {"ctx_human": self.ctx_human.weight, "voice_w": self.voice_w,
                "voice_b": self.voice_b, "voice_cond": self.voice_cond}

    @torch.jit.export
    def lead(self, state: Tensor, pos: int) -> Tensor:
        return self.lead_out(torch.relu(self.lead_state(state[self.layers - 1, 0])
                                        + self.lead_pos.weight[pos]))

    @torch.jit.export
    def advance(self, state: Tensor, human: Tensor, machine: Tensor, pos: int) -> Tensor:
        """The state after step t from its finished frame. human [256], machine [V] tokens."""
        positions = torch.full((1, 1), pos, dtype=torch.long, device=human.device)
        x = self._frame(human.view(1, 1, -1), machine.view(1, 1, -1), positions)
        if self.is_lstm:
            h, c = state[: self.layers], state[self.layers:]
            _, (h2, c2) = self._lstm_step(x, h, c)
            return torch.cat([h2, c2], dim=0)
        _, h2 = self._gru_step(x, state)
        return h2

    def _gru_step(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.rnn(x, h)

    def _lstm_step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        return self.rnn(x, (h, c))
