import numpy as np
import pytest
import torch

from explorer import device


def test_default_device_is_cpu_without_gpu(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert device.choose_device().type == expected


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cuda:7")
    assert device.choose_device("cpu").type == "cpu"


def test_environment_variable_is_used(monkeypatch):
    monkeypatch.setenv("EXPLORER_DEVICE", "cpu")
    assert device.choose_device().type == "cpu"


def test_bad_device_names_say_what_is_allowed(monkeypatch):
    monkeypatch.delenv("EXPLORER_DEVICE", raising=False)
    with pytest.raises(ValueError, match="not a torch device"):
        device.choose_device("gpu please")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            device.choose_device("cuda")


def test_one_thread_by_default():
    import explorer  # noqa: F401

    assert torch.get_num_threads() == 1


def test_seed_everything_repeats_all_generators():
    device.seed_everything(3)
    first = (np.random.rand(), torch.rand(1).item())
    device.seed_everything(3)
    assert (np.random.rand(), torch.rand(1).item()) == first


def test_generator_is_private_and_repeatable():
    a = torch.rand(3, generator=device.generator(5))
    b = torch.rand(3, generator=device.generator(5))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="non-negative integer"):
        device.generator(-1)


def test_info_names_device_and_threads():
    rows = device.info()
    assert rows["torch threads"] == "1" and rows["device"] in ("cpu", "cuda")


def test_blas_pools_use_one_thread_too():
    import scipy.linalg  # noqa: F401 - loads SciPy's own BLAS after explorer set the limits
    import threadpoolctl

    import explorer  # noqa: F401

    assert all(pool["num_threads"] == 1 for pool in threadpoolctl.threadpool_info())
