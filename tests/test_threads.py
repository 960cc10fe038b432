"""parallel_map keeps order, runs torch on one intra-op thread per worker, and restores the setting."""

import threading

import pytest
import torch

from modlens.threads import parallel_map, single_threaded


@pytest.fixture
def two_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


def test_results_keep_the_items_order(two_threads) -> None:
    assert parallel_map(lambda x: x * x, range(7), workers=3) == [x * x for x in range(7)]


def test_workers_run_single_threaded_on_their_own_threads(two_threads) -> None:
    seen = parallel_map(lambda _: (torch.get_num_threads(), threading.get_ident()), range(4), workers=2)
    assert {threads for threads, _ in seen} == {1}
    assert threading.get_ident() not in {ident for _, ident in seen}
    assert torch.get_num_threads() == 2


def test_one_worker_or_one_item_runs_here_untouched(two_threads) -> None:
    for workers, items in ((1, range(3)), (4, range(1))):
        seen = parallel_map(lambda _: (torch.get_num_threads(), threading.get_ident()), items, workers=workers)
        assert seen == [(2, threading.get_ident())] * len(items)


def test_the_setting_is_restored_after_an_error(two_threads) -> None:
    def fail(x: int) -> int:
        if x == 2:
            raise ValueError("boom")
        return x

    with pytest.raises(ValueError, match="boom"):
        parallel_map(fail, range(4), workers=2)
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), single_threaded():
        assert torch.get_num_threads() == 1
        raise RuntimeError
    assert torch.get_num_threads() == 2
