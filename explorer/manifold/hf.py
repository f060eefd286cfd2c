"""Hidden states of any Hugging Face causal language model, loaded from a local folder (offline).

Needs the optional extra: ``pip install explorer[hf]`` (transformers). Nothing is downloaded:
``from_pretrained(..., local_files_only=True)``. Prompts are left-padded in batches with an
attention mask, answers are generated greedily with ``output_hidden_states=True``, and at every
generation step the last position's hidden state of every layer is kept and pooled (REMA's
representation; see :data:`explorer.manifold.sources.POOLINGS`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from explorer.device import choose_device

from .sources import POOLINGS, Representations, pool_steps

#: A number as written in an answer: sign, digits (thousands separated by commas or not),
#: decimals, or a fraction a/b.
NUMBER = re.compile(r"[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?")


def as_number(text: str) -> Fraction | None:
    """The exact value of a number written as in :data:`NUMBER` ("1,000", "2.50", "-3", "1/2"),
    or None when ``text`` is not one whole number."""
    text = text.strip()
    if not NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text.replace(",", "").replace("\u2212", "-"))
    except ZeroDivisionError:
        return None


def words(text: str) -> list[str]:
    """Case-folded words without the punctuation around them."""
    return [w.strip(string.punctuation + "\u201c\u201d\u2018\u2019") for w in text.casefold().split()]


def first_answer_matches(generated: str, answer: str) -> bool:
    """The default checker: the first answer in the generated text equals the gold answer.

    A numeric gold answer is compared with the *first number* of the text, as exact values
    ("12.0" = "12", "1,000" = "1000", "1/2" = "0.5"; "12" is not "1", "10 apples" is not "1").
    Any other gold answer is compared with the text's first words, as many as the gold has,
    case-folded and without surrounding punctuation ("Paris." = "paris", "Parisian" is not "Paris").
    """
    gold = as_number(str(answer))
    if gold is not None:
        found = NUMBER.search(generated)
        return found is not None and as_number(found.group()) == gold
    expected = words(str(answer))
    return bool(expected) and words(generated)[: len(expected)] == expected



def load_local_model(path, device=None):
    """Tokenizer and model from a local folder, never from the network."""
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"the model path {str(folder)!r} does not exist (or is not a folder); "
                         "give a local folder saved with save_pretrained")
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ValueError("the Hugging Face source needs transformers: pip install 'explorer[hf]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"could not load a causal language model from {str(folder)!r}: {error}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("the tokenizer has neither a padding nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model.to(choose_device(device)).eval()


@torch.no_grad()
def hf_representations(
    model_path,
    prompts: Sequence[str],
    answers: Sequence[str],
    checker: Callable[[str, str], bool] = first_answer_matches,
    *,
    max_new_tokens: int = 8,
    pooling: str = "mean_generated",
    batch_size: int = 8,
    device=None,
    progress=None,
) -> Representations:
    """Per-layer pooled hidden states of a local causal LM on ``prompts`` and which answers
    ``checker(generated_text, gold_answer)`` accepts (default :func:`first_answer_matches`; its
    name is kept in ``details["checker"]``).

    Generation stops on every end token of the model's generation config (Llama-3-Instruct and
    Qwen2.5-Instruct have several); each answer's steps and text end at its first end token.

    The layers are the model's ``hidden_states``: the embedding output, then every block; in most
    models the last one is taken after the final normalisation, so it is flagged as such.
    """
    if len(prompts) != len(answers):
        raise ValueError(f"{len(prompts)} prompts but {len(answers)} answers; give one answer per prompt")
    if len(prompts) == 0:
        raise ValueError("no prompts given")
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError("max_new_tokens and batch_size must be at least 1")
    tokenizer, model = load_local_model(model_path, device)
    ends = end_token_ids(tokenizer, model)
    dev = next(model.parameters()).device
    pooled, texts, correct = [], [], []
    for start in range(0, len(prompts), batch_size):
        batch = list(prompts[start:start + batch_size])
        encoded = tokenizer(batch, return_tensors="pt", padding=True).to(dev)
        out = model.generate(
            **encoded, max_new_tokens=max_new_tokens, do_sample=False,
            output_hidden_states=True, return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=ends or None,
        )
        # out.hidden_states[step][layer]: (batch, positions, dim); step 0 covers the whole prompt
        steps = len(out.hidden_states)
        step_states = torch.stack([torch.stack([h[:, -1] for h in out.hidden_states[s]])
                                   for s in range(steps)], dim=2)  # (layers, batch, steps, dim)
        prompt_states = torch.stack(out.hidden_states[0])  # (layers, batch, prompt_len, dim)
        generated = out.sequences[:, encoded["input_ids"].shape[1]:]
        used = steps_until_end(generated[:, :steps], ends or None)
        pooled.append(pool_steps(step_states.float(), used.cpu(), pooling,
                                 prompt_states.float(), encoded["attention_mask"]).cpu())
        for row, n_used, answer in zip(generated, used.tolist(), answers[start:start + batch_size],
                                       strict=True):
            text = tokenizer.decode(row[:n_used], skip_special_tokens=True)
            texts.append(text)
            correct.append(bool(checker(text, answer)))
        if progress is not None:
            progress(min(start + batch_size, len(prompts)) / len(prompts), "generating")
    layers = torch.cat(pooled, dim=1).numpy()
    return Representations(
        layers=list(layers), correct=np.array(correct, dtype=bool),
        layer_names=["embedding"] + [f"layer {i}" for i in range(1, layers.shape[0])],
        final_normalised=True, source=f"hugging face model {Path(model_path).name}",
        details={"texts": texts, "end_token_ids": ends,
                 "checker": getattr(checker, "__name__", repr(checker))},
    )


def end_token_ids(tokenizer, model) -> list[int]:
    """Every token id generation stops on: the model's ``generation_config.eos_token_id`` (an id or
    a list, e.g. <|eot_id|> besides <|end_of_text|> in Llama-3-Instruct, <|im_end|> besides
    <|endoftext|> in Qwen2.5-Instruct), else the tokenizer's end-of-sequence token."""
    ids = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if ids is None:
        ids = tokenizer.eos_token_id
    if ids is None:
        return []
    return [int(i) for i in (ids if isinstance(ids, (list, tuple)) else [ids])]


def steps_until_end(generated: torch.Tensor, eos_token_id) -> torch.Tensor:
    """How many generation steps belong to each sequence: up to and including its first
    end-of-sequence token (after which the batch only pads)."""
    steps = generated.shape[1]
    if eos_token_id is None:
        return torch.full((generated.shape[0],), steps, dtype=torch.long)
    ends = torch.isin(generated, torch.as_tensor(eos_token_id, device=generated.device))
    first = ends.int().argmax(dim=1) + 1
    return torch.where(ends.any(dim=1), first, torch.full_like(first, steps)).cpu()


def read_prompts(path) -> tuple[list[str], list[str]]:
    """Prompts and gold answers from a JSON file: a list of {"prompt": ..., "answer": ...}
    (or one such object per line, JSON Lines)."""
    import json

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"the prompts file {str(file)!r} does not exist")
    text = file.read_text()
    try:
        items = json.loads(text) if text.lstrip().startswith("[") else [
            json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise ValueError(f"{file.name} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not items or not all(isinstance(i, dict) and "prompt" in i and "answer" in i for i in items):
        raise ValueError(f"{file.name} must hold a list of objects with 'prompt' and 'answer'")
    return [str(i["prompt"]) for i in items], [str(i["answer"]) for i in items]
