"""The Hugging Face source on a tiny randomly initialised GPT-2 built from a config (no download)."""

import numpy as np
import pytest
import torch

from explorer.manifold import rema

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from explorer.manifold.hf import hf_representations, steps_until_end  # noqa: E402

WORDS = ["<pad>", "<eos>", "<unk>"] + [str(i) for i in range(10)] + ["plus", "is", "what"]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_gpt2")
    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(WORDS),
        n_positions=32,
        n_embd=16,
        n_layer=3,
        n_head=2,
        bos_token_id=1,
        eos_token_id=1,
        pad_token_id=0,
    )
    transformers.GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def prompts_and_answers(n=24):
    rng = np.random.default_rng(0)
    prompts, answers = [], []
    for _ in range(n):
        a, b = rng.integers(0, 5, size=2)
        words = rng.integers(1, 4)  # different lengths, so left padding matters
        prompts.append(" ".join(["what"] * int(words) + [str(a), "plus", str(b), "is"]))
        answers.append(str(a + b))
    return prompts, answers


def test_loader_on_a_tiny_random_gpt2(tiny_gpt2):
    prompts, answers = prompts_and_answers()
    reps = hf_representations(tiny_gpt2, prompts, answers, max_new_tokens=3, batch_size=5)
    assert len(reps.layers) == 4  # embedding + 3 blocks (the last after the final LayerNorm)
    assert reps.final_normalised
    assert all(x.shape == (24, 16) for x in reps.layers)
    assert reps.correct.dtype == bool and len(reps.details["texts"]) == 24
    assert all(np.isfinite(x).all() for x in reps.layers)


def test_left_padding_gives_the_same_states_as_one_prompt_at_a_time(tiny_gpt2):
    prompts, answers = prompts_and_answers(6)
    together = hf_representations(tiny_gpt2, prompts, answers, max_new_tokens=3, batch_size=6)
    alone = hf_representations(tiny_gpt2, prompts, answers, max_new_tokens=3, batch_size=1)
    assert together.details["texts"] == alone.details["texts"]
    for a, b in zip(together.layers, alone.layers, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pooling", ["last_token", "mean_all"])
def test_other_poolings_and_rema_runs(tiny_gpt2, pooling):
    prompts, answers = prompts_and_answers()
    checker = lambda text, gold: len(text) % 2 == 0  # noqa: E731 - a mix of right and wrong
    reps = hf_representations(
        tiny_gpt2, prompts, answers, checker, max_new_tokens=2, pooling=pooling
    )
    if reps.correct.all() or reps.correct.sum() < 4:
        reps.correct[:12] = True
        reps.correct[12:] = False
    result = rema(reps.layers, reps.correct, k=3, geometry=False, layer_names=reps.layer_names)
    assert result.deviations.shape == (4, int((~reps.correct).sum()))


def test_missing_model_path_and_bad_arguments(tmp_path, tiny_gpt2):
    with pytest.raises(ValueError, match="does not exist"):
        hf_representations(tmp_path / "nowhere", ["a"], ["b"])
    with pytest.raises(ValueError, match="could not load"):
        hf_representations(tmp_path, ["a"], ["b"])
    with pytest.raises(ValueError, match="one answer per prompt"):
        hf_representations(tiny_gpt2, ["a", "b"], ["c"])
    with pytest.raises(ValueError, match="pooling"):
        hf_representations(tiny_gpt2, ["a"], ["b"], pooling="max")


def test_steps_until_end():
    generated = torch.tensor([[5, 1, 0, 0], [5, 6, 7, 8], [1, 0, 0, 0]])
    assert steps_until_end(generated, 1).tolist() == [2, 4, 1]


def test_the_app_runs_the_hugging_face_source(tiny_gpt2, tmp_path):
    import json

    from explorer.manifold import ManifoldApp
    from explorer.manifold.hf import read_prompts

    prompts, answers = prompts_and_answers(30)
    answers = [a if i % 3 else "what" for i, a in enumerate(answers)]  # a mix the checker rejects
    items = [{"prompt": p, "answer": a} for p, a in zip(prompts, answers, strict=True)]
    (tmp_path / "prompts.json").write_text(json.dumps(items))
    assert read_prompts(tmp_path / "prompts.json") == (prompts, answers)
    app = ManifoldApp(n_layers=4, dim=16, n_correct=60, n_error=20, diverge_at=2, svm=False)
    try:
        app.set(
            source="hugging face",
            model_path=str(tiny_gpt2),
            prompts_path=str(tmp_path / "prompts.json"),
            max_new_tokens=2,
            k=2,
        )
    except ValueError as error:  # a random model may get everything right or wrong
        assert "no errors" in str(error) or "correct samples" in str(error)
        assert app.params.source == "synthetic"
    else:
        assert app.result.result.n_layers == 4 and app.result.representations.final_normalised
    (tmp_path / "bad.json").write_text('[{"prompt": 1}]')
    with pytest.raises(ValueError, match="'prompt' and 'answer'"):
        read_prompts(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "generated, gold, right",
    [
        ("12", "1", False), (" 10 apples", "1", False), ("1", "12", False),  # issue 15 item 3
        (" 12", "12", True), ("12.", "12", True), ("12.0", "12", True), ("1,000", "1000", True),
        ("-3 is it", "-3", True), ("3", "-3", False), ("0.5", "1/2", True), ("120", "12", False),
        ("The answer is 7", "7", True), ("no number", "7", False), ("7 8", "8", False),
        ("Paris.", "Paris", True), ("parisian", "Paris", False), ("New York!", "new york", True),
        ("", "x", False),
    ],
)
def test_the_default_checker_compares_the_extracted_answer_exactly(generated, gold, right):
    from fractions import Fraction

    from explorer.manifold.hf import as_number, first_answer_matches

    assert first_answer_matches(generated, gold) is right
    assert as_number("1,234.5") == Fraction(2469, 2) and as_number("12 apples") is None


@pytest.fixture(scope="module")
def two_end_tokens(tiny_gpt2, tmp_path_factory):
    """The tiny GPT-2 whose generation config ends on two tokens, like Llama-3-Instruct and
    Qwen2.5-Instruct: <eos> and "5" (which this random model writes at various steps)."""
    import shutil

    folder = tmp_path_factory.mktemp("two_ends")
    shutil.copytree(tiny_gpt2, folder, dirs_exist_ok=True)
    config = transformers.GenerationConfig.from_pretrained(folder)
    config.eos_token_id = [1, WORDS.index("5")]
    config.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("pooling", ["mean_generated", "last_token"])
def test_an_answer_ends_on_any_end_token_of_the_generation_config(two_end_tokens, pooling):
    """Issue 15 item 2: a row ending on the second end token was averaged over padding. Alone
    (batch of 1) no row is ever padded, so the batched states must equal those."""
    prompts, answers = prompts_and_answers(12)
    together = hf_representations(two_end_tokens, prompts, answers, max_new_tokens=3,
                                  batch_size=12, pooling=pooling)
    alone = hf_representations(two_end_tokens, prompts, answers, max_new_tokens=3, batch_size=1,
                               pooling=pooling)
    for a, b in zip(together.layers, alone.layers, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert together.details["texts"] == alone.details["texts"]
    assert any(text.split()[-1:] == ["5"] and len(text.split()) < 3
               for text in together.details["texts"])  # some rows end early on "5"
    assert together.details["end_token_ids"] == [1, WORDS.index("5")]
    assert together.details["checker"] == "first_answer_matches"
