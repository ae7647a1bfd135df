"""Process-wide settings: the thread count follows the cores other processes leave free."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from groklab.errors import ConfigError
from groklab.runtime import ThreadGovernor, parse_threads, set_threads, usable_cores
from groklab.train import train


def test_threads_are_auto_or_a_positive_number():
    assert parse_threads(None) is None and parse_threads("auto") is None and parse_threads("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match=f"threads '{bad}' is not allowed; use auto or an integer >= 1"):
            parse_threads(bad)


@pytest.mark.alone
@pytest.mark.skipif(not Path("/proc/stat").exists() or usable_cores() < 2, reason="reads /proc/stat; needs 2 cores")
def test_a_busy_core_is_left_to_its_process_and_taken_back_when_it_is_free():
    before = torch.get_num_threads()
    cores = usable_cores()
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # the loop is running
        gov = ThreadGovernor(cores, every_s=1.0, first_s=1.0)
        time.sleep(1.1)
        gov.tick()
        assert gov.threads == torch.get_num_threads() == cores - 1
    finally:
        loop.kill()
        loop.wait()
    time.sleep(1.1)
    gov.tick()
    assert gov.threads == torch.get_num_threads() == cores
    torch.set_num_threads(before)


def test_the_thread_count_does_not_change_a_run(tiny):
    """The governor may change the thread count while a run trains: results must not depend on it."""
    before = torch.get_num_threads()
    cfg = tiny.replace(steps=40, early_stop=False)
    try:
        histories = []
        for n in (1, 2):
            set_threads(n)
            histories.append([{k: v for k, v in r.items() if k != "elapsed_s"} for r in train(cfg).history])
    finally:
        set_threads(None)
        torch.set_num_threads(before)
    assert histories[0] == histories[1]
