"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest
import torch

from pegan import config as pconfig


@pytest.fixture(scope="session")
def cfg():
    """The shipped registry (config.yaml), validated."""
    return pconfig.load()


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids OpenMP spin-waiting on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
