"""Train the manifold explorer's tiny chain-of-operations transformer on a CPU (a few minutes).

    python scripts/train_manifold_model.py            # writes explorer/manifold/data/tiny_chain_model.*

It trains on fresh random chains (never the held-out tenth) with the cross-entropy of the answer
tokens. Learning this task is sudden (accuracy jumps from ~10 % to ~100 % within a few hundred
steps), so a fixed length is a poor way to get a model that is good but not perfect; instead the
script checks the held-out accuracy every 50 steps and stops at the first check where the final
answer is right at least ``--target`` of the time. REMA needs both right and wrong answers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F

from explorer.manifold.tiny_model import (
    CONFIG,
    WEIGHTS,
    ChainTask,
    TinyConfig,
    TinyTransformer,
    held_out_problems,
    save_model,
)


def training_batch(task: ChainTask, size: int, rng: np.random.Generator) -> torch.Tensor:
    digits, ops = task.sample(2 * size, rng)
    keep = ~task.held_out(digits, ops)
    return task.sequences(digits[keep][:size], ops[keep][:size])


@torch.no_grad()
def held_out_accuracy(model, task: ChainTask, n: int = 1000) -> tuple[float, float]:
    digits, ops = held_out_problems(task, n, seed=12345)
    generated = model.generate(task.prompts(digits, ops), task.answer_length).numpy()
    truth = task.running_values(digits, ops)
    steps = generated[:, : task.n_ops] == truth
    return float(steps[:, -1].mean()), float(steps.all(axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="at most this many steps")
    parser.add_argument("--target", type=float, default=0.92, help="stop at this held-out accuracy")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modulus", type=int, default=13)
    parser.add_argument("--op-weights", type=float, nargs=3, default=(0.45, 0.45, 0.1),
                        help="frequencies of + - * in training and evaluation chains")
    parser.add_argument("--weights", default=str(WEIGHTS))
    parser.add_argument("--config", default=str(CONFIG))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    task = ChainTask(modulus=args.modulus, op_weights=tuple(args.op_weights))
    model = TinyTransformer(TinyConfig(vocab_size=task.vocab_size))
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / 100))
    answer_from = task.prompt_length - 1  # logits at '=' predict s1
    began = time.monotonic()
    for step in range(1, args.steps + 1):
        tokens = training_batch(task, args.batch, rng)
        logits = model(tokens[:, :-1])[:, answer_from:]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, answer_from + 1:].reshape(-1))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % 50 == 0 or step == args.steps:
            model.eval()
            final, chain = held_out_accuracy(model, task)
            model.train()
            print(f"step {step:5d}  loss {loss.item():.3f}  held-out final {final:.3f}  "
                  f"whole chain {chain:.3f}  {time.monotonic() - began:.0f}s", flush=True)
            if final >= args.target:
                break
    model.eval()
    final, chain = held_out_accuracy(model, task)
    info = {"steps": step, "batch": args.batch, "lr": args.lr, "seed": args.seed,
            "held_out_final_accuracy": final, "held_out_chain_accuracy": chain,
            "seconds": round(time.monotonic() - began)}
    save_model(model, task, info, args.weights, args.config)
    print("saved", args.weights, info)


if __name__ == "__main__":
    main()
