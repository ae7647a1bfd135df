"""Progress bars (``groklab.bars``): paced for a terminal or a log; a sweep's bar counts finished, running and
left runs."""

import subprocess
import sys

from groklab.bars import pace, show_sweep


class _Bar:
    initial, n, postfix, updates = 3, 0, "", 0

    def set_postfix_str(self, text, refresh=True):
        self.postfix = text

    def update(self, n):
        self.updates += 1


def test_a_sweeps_bar_counts_the_runs_it_trains():
    bar = _Bar()
    show_sweep(bar, [{"status": "generalized"}, {"status": "running"}, {"status": "interrupted"}], 4)
    assert bar.n == 3 + 1 and bar.postfix == "running 1, left 2" and bar.updates == 1
    show_sweep(None, [], 4)  # no bar (--quiet): nothing to do


def test_into_a_file_the_bar_is_paced_for_a_log(tmp_path):
    assert pace() == {"mininterval": 30.0, "maxinterval": 60.0}  # pytest captures stderr: not a terminal
    out = subprocess.run([sys.executable, "-m", "groklab", "train", "--preset", "quick", "--steps", "150",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert len(out.stderr) < 2000, len(out.stderr)  # a few lines, not every redraw
