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


@pytest.fixture
def no_downloads(monkeypatch):
    """Nothing may fetch weights: torch hub's and clean-fid's downloaders raise."""
    def forbid(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", forbid)
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbid)
    import cleanfid.downloads_helper as dh
    monkeypatch.setattr(dh, "check_download_url", forbid)
    monkeypatch.setattr(dh, "check_download_inception", forbid)
