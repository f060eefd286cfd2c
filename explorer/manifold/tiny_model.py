"""The project's own small reasoning model: a tiny causal transformer that computes chains of
modular operations, step by step, and gets some of them wrong.

Task: ``a o1 b o2 c o3 d =`` with digits mod P and operations + - * applied left to right; the
model writes the running values s1 = a o1 b, s2 = s1 o2 c, s3 = s2 o3 d, then ``;``. The answer
is right when s3 is right. Each step depends on the model's own previous output, so one slip
derails the rest of the chain: a small, fully checkable picture of "wrong reasoning".

The model is a pre-norm GPT (Radford et al. 2019) in plain torch, so loading it needs nothing but
``safetensors``; ``scripts/train_manifold_model.py`` trains it on a CPU in minutes, and its
weights and config ship in ``explorer/manifold/data/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from explorer.checks import is_integer
from explorer.device import check_seed, choose_device

from .sources import Representations, pool_steps

DATA = Path(__file__).parent / "data"
WEIGHTS = DATA / "tiny_chain_model.safetensors"
CONFIG = DATA / "tiny_chain_model.json"

OPERATIONS = ("+", "-", "*")


@dataclass
class ChainTask:
    """Chains of ``n_ops`` modular operations on digits 0 .. modulus - 1, as token ids.

    Vocabulary: the digits, then ``+ - *``, ``=``, ``;`` (end), ``^`` (start)."""

    modulus: int = 13
    n_ops: int = 3
    op_weights: tuple = (1 / 3, 1 / 3, 1 / 3)  # how often + - * appear

    @property
    def plus(self) -> int:
        return self.modulus

    @property
    def equals(self) -> int:
        return self.modulus + 3

    @property
    def end(self) -> int:
        return self.modulus + 4

    @property
    def start(self) -> int:
        return self.modulus + 5

    @property
    def vocab_size(self) -> int:
        return self.modulus + 6

    @property
    def prompt_length(self) -> int:
        return 2 * self.n_ops + 3  # ^ a o b o c o d =

    @property
    def answer_length(self) -> int:
        return self.n_ops + 1  # s1 .. s_n ;

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` random problems: digits (n, n_ops + 1) and operation codes (n, n_ops)."""
        weights = np.asarray(self.op_weights, dtype=np.float64)
        return (rng.integers(0, self.modulus, size=(n, self.n_ops + 1)),
                rng.choice(len(OPERATIONS), size=(n, self.n_ops), p=weights / weights.sum()))

    def held_out(self, digits: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """True for the problems reserved for evaluation (a fixed pseudo-random tenth)."""
        index = np.zeros(digits.shape[0], dtype=np.int64)
        for column in range(digits.shape[1]):
            index = index * self.modulus + digits[:, column]
        for column in range(ops.shape[1]):
            index = index * len(OPERATIONS) + ops[:, column]
        mixed = (index * 2654435761 + 12345) % (2**31)  # Knuth's multiplicative hash
        return (mixed >> 7) % 10 == 0

    def running_values(self, digits: np.ndarray, ops: np.ndarray) -> np.ndarray:
        """The correct chain s1 .. s_n: (n, n_ops)."""
        value = digits[:, 0].copy()
        out = np.empty(ops.shape, dtype=np.int64)
        for step in range(ops.shape[1]):
            operand = digits[:, step + 1]
            value = np.select([ops[:, step] == 0, ops[:, step] == 1],
                              [value + operand, value - operand], value * operand) % self.modulus
            out[:, step] = value
        return out

    def prompts(self, digits: np.ndarray, ops: np.ndarray) -> torch.Tensor:
        """Token ids ``^ a o1 b o2 c o3 d =``: (n, prompt_length)."""
        n = digits.shape[0]
        tokens = np.empty((n, self.prompt_length), dtype=np.int64)
        tokens[:, 0] = self.start
        tokens[:, 1] = digits[:, 0]
        tokens[:, 2:-1:2] = self.plus + ops
        tokens[:, 3:-1:2] = digits[:, 1:]
        tokens[:, -1] = self.equals
        return torch.from_numpy(tokens)

    def sequences(self, digits: np.ndarray, ops: np.ndarray) -> torch.Tensor:
        """Prompt followed by the correct answer tokens (for training)."""
        answer = np.concatenate([self.running_values(digits, ops),
                                 np.full((digits.shape[0], 1), self.end)], axis=1)
        return torch.cat([self.prompts(digits, ops), torch.from_numpy(answer)], dim=1)

    def text(self, tokens) -> str:
        names = [str(i) for i in range(self.modulus)] + list(OPERATIONS) + ["=", ";", "^"]
        return " ".join(names[int(t)] for t in tokens)


@dataclass
class TinyConfig:
    vocab_size: int
    max_length: int = 16
    d_model: int = 64
    n_layers: int = 6
    n_heads: int = 4
    d_ff: int = 128


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.ln_attention = nn.LayerNorm(config.d_model)
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.ln_mlp = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, config.d_ff), nn.GELU(),
                                 nn.Linear(config.d_ff, config.d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln_attention(x)).split(width, dim=2)
        heads = lambda t: t.view(batch, length, self.n_heads, -1).transpose(1, 2)  # noqa: E731
        attended = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), is_causal=True)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.ln_mlp(x))


class TinyTransformer(nn.Module):
    """A small GPT: token + position embeddings, ``n_layers`` blocks, a final LayerNorm, and an
    output layer tied to the token embedding."""

    def __init__(self, config: TinyConfig):
        super().__init__()
        self.config = config
        self.token = nn.Embedding(config.vocab_size, config.d_model)
        self.position = nn.Embedding(config.max_length, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_final = nn.LayerNorm(config.d_model)

    def forward(self, tokens: torch.Tensor, hidden: bool = False):
        """Logits (batch, length, vocab); with ``hidden=True`` also the hidden states: the
        embedding output, each block's output, and the final normalised state (n_layers + 2)."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        x = self.token(tokens) + self.position(positions)
        states = [x]
        for block in self.blocks:
            x = block(x)
            states.append(x)
        x = self.ln_final(x)
        states.append(x)
        logits = x @ self.token.weight.T
        return (logits, states) if hidden else logits

    @property
    def layer_names(self) -> list[str]:
        return ["embedding"] + [f"block {i + 1}" for i in range(self.config.n_layers)] + ["final norm"]

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, steps: int) -> torch.Tensor:
        """Greedy continuation of equal-length prompts by ``steps`` tokens: (batch, steps)."""
        tokens = prompts
        for _ in range(steps):
            next_token = self(tokens)[:, -1].argmax(dim=-1, keepdim=True)
            tokens = torch.cat([tokens, next_token], dim=1)
        return tokens[:, prompts.shape[1]:]


def save_model(model: TinyTransformer, task: ChainTask, info: dict, weights=WEIGHTS, config=CONFIG):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    Path(config).write_text(json.dumps(
        {"model": asdict(model.config), "task": asdict(task), "training": info}, indent=2))


def load_model(weights=WEIGHTS, config=CONFIG, device=None) -> tuple[TinyTransformer, ChainTask, dict]:
    """The shipped (or given) model, its task and its training record."""
    from safetensors.torch import load_file

    weights, config = Path(weights), Path(config)
    for path in (weights, config):
        if not path.is_file():
            raise ValueError(f"the model file {str(path)!r} does not exist; train it with "
                             "scripts/train_manifold_model.py")
    meta = json.loads(config.read_text())
    model = TinyTransformer(TinyConfig(**meta["model"]))
    model.load_state_dict(load_file(str(weights)))
    task = ChainTask(**{**meta["task"], "op_weights": tuple(meta["task"]["op_weights"])})
    return model.to(choose_device(device)).eval(), task, meta.get("training", {})


@torch.no_grad()
def tiny_model_representations(
    n_problems: int = 1000,
    *,
    pooling: str = "mean_generated",
    seed: int = 0,
    device=None,
    progress=None,
    model: tuple | None = None,
) -> Representations:
    """Hidden states of the shipped tiny model on ``n_problems`` held-out chains.

    The model generates greedily; since it is causal, one forward pass over the finished sequence
    gives exactly the hidden states each generation step saw, which are then pooled
    (see :data:`explorer.manifold.sources.POOLINGS`). ``correct`` is True where the final value
    s_n is right; ``details`` holds the texts, the step of each chain's first mistake and the
    ``strata`` of a matched comparison: each chain's number of multiplications (0 .. n_ops).
    """
    seed = check_seed(seed)
    if not is_integer(n_problems) or n_problems < 10:
        raise ValueError(f"n_problems must be an integer >= 10, got {n_problems!r}")
    net, task, _ = model if model is not None else load_model(device=device)
    dev = next(net.parameters()).device
    digits, ops = held_out_problems(task, n_problems, seed)
    prompts = task.prompts(digits, ops).to(dev)
    pooled, answers = [], []
    batch = 200
    for start in range(0, n_problems, batch):
        chunk = prompts[start:start + batch]
        generated = net.generate(chunk, task.answer_length)
        _, states = net(torch.cat([chunk, generated], dim=1), hidden=True)
        stacked = torch.stack(states)  # (layers, batch, length, dim)
        first = chunk.shape[1] - 1
        step_states = stacked[:, :, first:first + task.answer_length]
        is_end = generated == task.end
        used = torch.where(is_end.any(dim=1), is_end.int().argmax(dim=1) + 1,
                           torch.full_like(is_end[:, 0], task.answer_length, dtype=torch.long))
        pooled.append(pool_steps(step_states, used, pooling, stacked[:, :, :chunk.shape[1]],
                                 torch.ones_like(chunk)))
        answers.append(generated.cpu())
        if progress is not None:
            progress(min(start + batch, n_problems) / n_problems, "running the tiny model")
    layers = torch.cat(pooled, dim=1).cpu().numpy()
    generated = torch.cat(answers).numpy()
    truth = task.running_values(digits, ops)
    steps_ok = generated[:, :task.n_ops] == truth
    first_mistake = np.where(steps_ok.all(axis=1), -1, np.argmin(steps_ok, axis=1))
    return Representations(
        layers=list(layers), correct=steps_ok[:, -1].copy(), layer_names=net.layer_names,
        final_normalised=True, source="tiny chain model",
        details={"first_mistake_step": first_mistake, "ops": ops, "digits": digits,
                 "strata": (ops == OPERATIONS.index("*")).sum(axis=1),  # multiplications
                 "texts": [task.text(p) + " " + task.text(g) for p, g in
                           zip(task.prompts(digits, ops).numpy(), generated, strict=True)]},
    )


def held_out_problems(task: ChainTask, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct problems from the held-out tenth, drawn with ``seed``."""
    rng = np.random.default_rng(seed + 7919)
    digits, ops = task.sample(40 * n + 1000, rng)
    keep = task.held_out(digits, ops)
    digits, ops = digits[keep], ops[keep]
    _, unique = np.unique(np.concatenate([digits, ops], axis=1), axis=0, return_index=True)
    unique = np.sort(unique)[:n]
    return digits[unique], ops[unique]
