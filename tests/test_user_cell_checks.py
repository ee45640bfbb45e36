"""The launcher's check of a user's cell: two steps (batches of 2 and 3; the second with large inputs and states,
where every finite gate value must still be in [0, 1]), announced once on stderr, and its import, constructor
and steps stopped after a time limit, each refusal one line naming ``model.cell``."""

from __future__ import annotations

import re
import signal

import pytest
import torch

from rnnbench.errors import ConfigError, RnnbenchError
from rnnbench.launch.validate import preflight
from rnnbench.models.cells import CELLS, protocol_problem, registry
from rnnbench.models.cells.base import CHECK_BATCHES

from cells_under_test import all_cells

HEADER = "import time\n\nimport torch\n\nfrom rnnbench.models.cells import Cell\n\n\n"
LINEAR = ("    def __init__(self, input_size, hidden_size):\n"
          "        super().__init__(input_size, hidden_size)\n"
          "        self.linear = torch.nn.Linear(input_size + hidden_size, hidden_size)\n\n")


LIMIT_S = 2.0  # the tests' USER_CELL_TIMEOUT_S
HANG_S = 30  # how long the hanging cells hang: far past the limit, yet a test without one ends (and fails)


def user_module(tmp_path, monkeypatch, name: str, source: str) -> None:
    """Save ``source`` as ``name``.py in tmp_path, importable as a user's cell module (a name per test:
    Python keeps a module once imported)."""
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))


def timer_left_as(before: tuple[float, float]) -> bool:
    """Whether the SIGALRM timer is as it was (``before``, from getitimer), less the time gone: pytest-timeout's,
    where it runs with the signal method, else none."""
    left, interval = signal.getitimer(signal.ITIMER_REAL)
    return (left, interval) == (0.0, 0.0) if before[0] == 0 else 0 < left <= before[0] and interval == before[1]


def refusal(cell: str, *overrides: str) -> str:
    with pytest.raises(RnnbenchError) as error:
        preflight(["-m", f"model.cell=lstm,{cell}", *overrides])
    text = str(error.value)
    assert text.startswith(f"model.cell='{cell}' is not allowed: ") and "\n" not in text, text
    return text


def test_the_two_steps_have_different_batch_sizes():
    assert len(set(CHECK_BATCHES)) == 2


@pytest.mark.parametrize("batch,wrong", [(2, 3), (3, 2)])
def test_a_cell_right_at_one_batch_size_only_is_refused_naming_the_expected_shape(tmp_path, monkeypatch, batch,
                                                                                   wrong):
    module = f"fixed_batch_{batch}"
    user_module(tmp_path, monkeypatch, module, HEADER + "class Fixed(Cell):\n" + LINEAR +
                "    def step(self, x_t, state):\n"
                f"        h = torch.tanh(self.linear(torch.cat([x_t, state[0]], -1))).view({batch}, -1)\n"
                "        return (h,), {}\n")
    text = refusal(f"{module}.Fixed", "model.hidden_size=48")
    assert f"state 'h' must be (B, hidden_size) = ({wrong}, 48), got ({batch}, {48 * wrong // batch})" in text, text
    text = refusal(f"{module}.Fixed", "model.hidden_size=5")  # 5 * wrong is no multiple of batch: view raises
    where = " (on a batch of 2)" if wrong == 2 else " (on a batch of 3, inputs 30 * N(0, 1) and states in [-1, 1])"
    assert text.endswith(f"step raised RuntimeError: shape '[{batch}, -1]' is invalid for input of size {5 * wrong}"
                         + where), text


def test_a_gate_leaving_0_1_only_on_large_inputs_is_refused_naming_the_gate_and_its_max(tmp_path, monkeypatch):
    user_module(tmp_path, monkeypatch, "scaled_gate", HEADER + "class ScaledGate(Cell):\n" + LINEAR +
                "    def step(self, x_t, state):\n"
                "        a = self.linear(torch.cat([x_t, state[0]], -1))\n"
                "        g = 1.3 * torch.sigmoid(a)\n"
                "        return (g * torch.tanh(a) + (1 - g) * state[0],), {'squashed': g}\n")
    from scaled_gate import ScaledGate

    torch.manual_seed(0)
    cell = ScaledGate(4, 8)
    _, gates = cell.step(torch.rand(2, 4), cell.initial_state(2))  # what the one small step saw: inside [0, 1]
    assert bool(((gates["squashed"] >= 0) & (gates["squashed"] <= 1)).all())
    problem = protocol_problem(cell)
    found = re.search(r"^gate 'squashed' has values outside \[0, 1\] \(min ([-\d.e]+), max ([-\d.e]+)\) "
                      r"\(on a batch of 3, inputs 30 \* N\(0, 1\) and states in \[-1, 1\]\)$", problem or "")
    assert found, problem
    assert 0 <= float(found.group(1)) and 1 < float(found.group(2)) <= 1.3
    text = refusal("scaled_gate.ScaledGate")
    assert "a cell that keeps the Cell protocol: gate 'squashed' has values outside [0, 1] (min " in text, text
    assert re.search(r"max 1\.[0-3]\d*\)", text), text


def test_a_gate_that_overflows_to_nan_on_large_inputs_is_range_checked_only_where_finite(tmp_path, monkeypatch):
    """A sigmoid written naively, exp(a) / (1 + exp(a)), is inf / inf = nan where exp overflows: a gate still."""
    user_module(tmp_path, monkeypatch, "naive_gate", HEADER + "class NaiveGate(Cell):\n" + LINEAR +
                "    def step(self, x_t, state):\n"
                "        a = 10 * self.linear(torch.cat([x_t, state[0]], -1))\n"
                "        g = torch.exp(a) / (1 + torch.exp(a))\n"
                "        return (torch.nan_to_num(g) * state[0],), {'naive': g}\n")
    from naive_gate import NaiveGate

    torch.manual_seed(0)
    cell = NaiveGate(4, 8)
    _, gates = cell.step(30 * torch.randn(3, 4), tuple(torch.rand(3, 8) * 2 - 1 for _ in cell.state_names))
    assert gates["naive"].isnan().any()  # the large step does produce non-finite gate values
    assert protocol_problem(cell) is None


@pytest.mark.parametrize("name", list(all_cells()))
@pytest.mark.parametrize("sizes", [(1, 1), (1, 257), (5, 3), (64, 128), (300, 16)])
def test_every_built_in_cell_passes_both_steps_at_every_size_and_leaves_the_global_rng(name, sizes):
    cls = all_cells()[name]
    options = [{}] + ([{"nonlinearity": "relu"}, {"nonlinearity": "tanh"}] if name in ("rnn", "indrnn") else [])
    for option in options:
        for dtype in (torch.float32, torch.float64):
            cell = cls(*sizes, **option).to(dtype)
            before = torch.random.get_rng_state()
            assert protocol_problem(cell) is None, (name, sizes, option, dtype)
            assert torch.equal(torch.random.get_rng_state(), before)


def test_the_large_step_reaches_the_sigmoids_tails_of_the_built_in_lstm():
    """The point of the second step: a built-in LSTM's gates come near 0 and 1 there, far from the 0.5 of the
    first (a gate of 1.3 * sigmoid would be above 1)."""
    torch.manual_seed(0)
    cell = CELLS["lstm"](4, 16)
    generator = torch.Generator().manual_seed(0)
    x = 30 * torch.randn(3, 4, generator=generator)
    _, gates = cell.step(x, tuple(torch.rand(3, 16, generator=generator) * 2 - 1 for _ in cell.state_names))
    values = torch.cat([g.flatten() for g in gates.values()])
    assert values.min() < 0.05 and values.max() > 0.95


def test_a_user_cell_is_announced_once_per_process_and_a_built_in_never(tmp_path, monkeypatch, capsys):
    user_module(tmp_path, monkeypatch, "announced_cells", HEADER + "class Announced(Cell):\n" + LINEAR +
                "    def step(self, x_t, state):\n"
                "        return (torch.tanh(self.linear(torch.cat([x_t, state[0]], -1))),), {}\n")
    monkeypatch.setattr(registry, "_ANNOUNCED", set())
    capsys.readouterr()
    assert preflight(["-m", "model.cell=lstm,announced_cells.Announced", "seed=0,1"]) == 4
    registry.resolve_cell("announced_cells.Announced")
    assert registry.resolve_cell("gru") is CELLS["gru"]
    err = capsys.readouterr().err
    line = ("rnnbench: checking the user cell announced_cells.Announced (import, constructor, one step; each "
            "stopped after 60 s)\n")
    assert err == line


def test_a_user_cell_whose_import_hangs_is_stopped_in_one_line_naming_the_limit(tmp_path, monkeypatch):
    user_module(tmp_path, monkeypatch, "hanging_import", HEADER + f"time.sleep({HANG_S})\n\n\n"
                "class Never(Cell):\n    pass\n")
    monkeypatch.setattr(registry, "USER_CELL_TIMEOUT_S", LIMIT_S)
    previous, timer = signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)
    text = refusal("hanging_import.Never")
    assert text == ("model.cell='hanging_import.Never' is not allowed: a cell whose import, and whose constructor "
                    "and one-step check, each finish within 2 s: importing hanging_import was stopped after 2 s")
    assert signal.getsignal(signal.SIGALRM) is previous and timer_left_as(timer)


@pytest.mark.parametrize("where", ["constructor", "step"])
def test_a_user_cell_whose_constructor_or_step_hangs_is_stopped_in_one_line(tmp_path, monkeypatch, where):
    """The hang is Python code that catches every Exception: the limit still stops it."""
    hang = (f"        end = time.monotonic() + {HANG_S}\n"
            "        while time.monotonic() < end:\n"
            "            try:\n"
            "                time.sleep(0.01)\n"
            "            except Exception:\n"
            "                pass\n")
    source = HEADER + "class Hangs(Cell):\n" + LINEAR
    source = source.replace("hidden_size)\n\n", "hidden_size)\n" + hang + "\n") if where == "constructor" else \
        source + "    def step(self, x_t, state):\n" + hang
    module = f"hanging_{where}"
    user_module(tmp_path, monkeypatch, module, source)
    monkeypatch.setattr(registry, "USER_CELL_TIMEOUT_S", LIMIT_S)
    timer = signal.getitimer(signal.ITIMER_REAL)
    text = refusal(f"{module}.Hangs")
    assert text.endswith(": its constructor and one-step check was stopped after 2 s"), text
    assert "each finish within 2 s" in text
    assert timer_left_as(timer)


def test_the_limit_leaves_a_timer_already_running_to_its_owner(monkeypatch):
    """pytest-timeout's alarm, say: re-armed with the time it has left when it fires after the limit, untouched
    (and the block unbounded) when it fires first; its handler restored either way."""
    assert not registry.is_user_cell(CELLS["lstm"]) and registry.is_user_cell(all_cells()["my_cells.PeepholeLSTM"])
    monkeypatch.setattr(registry, "USER_CELL_TIMEOUT_S", LIMIT_S)
    fired = []

    def handler(*_):
        fired.append(True)

    previous, timer = signal.signal(signal.SIGALRM, handler), signal.getitimer(signal.ITIMER_REAL)
    try:
        signal.setitimer(signal.ITIMER_REAL, 100.0)
        with pytest.raises(ConfigError) as error:
            with registry.user_cell_time_limit("x.Y", "importing x"):
                while True:
                    pass
        assert error.value.setting == "cell" and error.value.allowed.endswith("importing x was stopped after 2 s")
        assert signal.getsignal(signal.SIGALRM) is handler and 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with registry.user_cell_time_limit("x.Y", "importing x"):  # the other timer comes first: not bounded
            assert signal.getsignal(signal.SIGALRM) is handler
            while not fired:
                pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, *timer)  # pytest-timeout's, where it has one
        signal.signal(signal.SIGALRM, previous)
