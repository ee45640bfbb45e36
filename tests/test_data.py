"""Datasets: shapes, determinism, disjoint splits, baselines, and the timemachine loader."""

from __future__ import annotations

import hashlib
import http.server
import math
import threading
from pathlib import Path

import pytest
import torch

from rnnbench.data import AddingProblem, CopyMemory, Digits, TimeMachine
from rnnbench.data.timemachine import D2L_SHA256, VOCABULARY, encode
from rnnbench.errors import ConfigError


def built(module):
    module.setup()
    return module.splits


def rows(tensor: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in tensor}


def test_adding_problem_shapes_markers_and_baseline():
    splits = built(AddingProblem(seq_len=30, num_train=20000, num_val=100, num_test=100, seed=0))
    x, y = splits["train"]
    assert x.shape == (20000, 30, 2) and y.shape == (20000,)
    markers = x[..., 1]
    assert torch.equal(markers.sum(1), torch.full((20000,), 2.0))
    assert torch.equal(markers[:, :15].sum(1), torch.ones(20000))  # one marker in each half
    assert torch.allclose((x[..., 0] * markers).sum(1), y)
    # The sum of two U[0,1] has variance 1/6: the MSE of predicting the constant 1.
    assert abs(y.var().item() - 1 / 6) < 0.005
    assert abs(((y - 1) ** 2).mean().item() - 1 / 6) < 0.005
    assert AddingProblem(seq_len=30).task.baseline_loss == pytest.approx(1 / 6)


def test_generated_data_is_deterministic_per_seed_and_splits_are_disjoint():
    a = built(AddingProblem(seq_len=10, num_train=300, num_val=50, num_test=50, seed=0))
    b = built(AddingProblem(seq_len=10, num_train=300, num_val=50, num_test=50, seed=0))
    c = built(AddingProblem(seq_len=10, num_train=300, num_val=50, num_test=50, seed=1))
    assert all(torch.equal(a[s][0], b[s][0]) and torch.equal(a[s][1], b[s][1]) for s in a)
    assert not torch.equal(a["train"][0], c["train"][0])
    assert not rows(a["train"][0]) & rows(a["val"][0]) and not rows(a["val"][0]) & rows(a["test"][0])


def test_copy_task_follows_its_definition():
    module = CopyMemory(seq_len=15, num_train=200, num_val=20, num_test=20, seed=3)
    x, y = built(module)["train"]
    length = 15 + 20
    assert x.shape == y.shape == (200, length) and x.dtype == torch.long
    symbols = x[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert (x[:, 10:length - 11] == 0).all() and (x[:, length - 11] == 9).all() and (x[:, -10:] == 0).all()
    assert (y[:, :-10] == 0).all() and torch.equal(y[:, -10:], symbols)
    task = module.task
    assert task.seq_len == length and task.metric_steps == (length - 10, length)
    assert task.baseline_loss == pytest.approx(10 * math.log(8) / (15 + 20))
    # The memoryless predictor really scores the baseline: blanks with certainty, then uniform over 1..8.
    logits = torch.full((200, length, 9), -1e9)
    logits[:, :-10, 0] = 0
    logits[:, -10:, 1:] = 0
    assert task.compute_loss(logits, y).item() == pytest.approx(task.baseline_loss, rel=1e-5)
    # ... and its recall accuracy, in expectation: one symbol in 8 (an argmax over ties takes symbol 1)
    assert task.baseline_metric == 1 / 8
    assert (y[:, -10:] == 1).float().mean().item() == pytest.approx(1 / 8, abs=0.03)


@pytest.mark.parametrize("layout,shape", [("rows", (8, 8)), ("pixels", (64, 1))])
def test_digits_layouts_and_stratified_split(layout, shape):
    splits = built(Digits(layout=layout, seed=0))
    sizes = {name: len(split[1]) for name, split in splits.items()}
    assert sum(sizes.values()) == 1797 and sizes["test"] == pytest.approx(0.15 * 1797, abs=2)
    for split in splits.values():
        assert split[0].shape[1:] == shape and 0 <= split[0].min() and split[0].max() <= 1
        counts = torch.bincount(split[1], minlength=10).float()
        assert (counts / counts.sum() - 0.1).abs().max() < 0.02  # every class in proportion
        # so the input-blind accuracy is the largest class's share, chance within 2 points
        assert (counts.max() / counts.sum()).item() == pytest.approx(Digits().task.baseline_metric, abs=0.02)
    assert not rows(splits["train"][0]) & rows(splits["test"][0]) - rows(splits["train"][0][:0])


def test_timemachine_vocabulary_and_windows(timemachine_text):
    module = TimeMachine(path=str(timemachine_text), seq_len=32, num_train=1000, num_val=200, num_test=200)
    splits = built(module)
    assert len(VOCABULARY) == 28 and module.task.output_size == 28 and module.task.causal
    x, y = splits["train"]
    assert x.shape == y.shape == (1000, 32)
    assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(x[1:, :-1], x[:-1, 1:])  # shifted, sliding windows
    corpus = encode(timemachine_text.read_text())
    assert torch.equal(x[0], corpus[:32])
    assert "".join(VOCABULARY[i] for i in corpus[:16]) == "the time machine"
    # Splits are consecutive stretches of the text: the val stretch starts after the last train target.
    assert torch.equal(splits["val"][0][0], corpus[1000 + 32:1000 + 64])


def test_perplexity_of_a_blown_up_model_is_its_finite_value_not_an_overflow(timemachine_text):
    task = TimeMachine(path=str(timemachine_text)).task
    logits = torch.zeros(2, 3, 28)
    logits[..., 0] = 120.0  # every prediction sure of token 0, every target another: 120 nats each
    targets = torch.ones(2, 3, dtype=torch.long)
    metric = task.make_metric()
    metric.update(*task.metric_inputs(logits, targets))
    loss = task.compute_loss(logits, targets).item()
    assert loss == pytest.approx(120.0, abs=1e-3) and math.exp(80) < math.exp(loss) < float("inf")
    assert metric.compute().item() == pytest.approx(math.exp(loss), rel=1e-4)  # float32 would give inf


def test_timemachine_refuses_missing_or_binary_paths(tmp_path):
    with pytest.raises(ConfigError, match="path='.*nowhere.txt' is not allowed: an existing text file"):
        TimeMachine(path=str(tmp_path / "nowhere.txt"))
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConfigError, match="UTF-8 text"):
        TimeMachine(path=str(binary))


class _Server:
    """Serves a directory on 127.0.0.1 for the download tests."""

    def __init__(self, directory: Path):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path, timemachine_text):
    served = tmp_path / "served"
    served.mkdir()
    (served / "timemachine.txt").write_bytes(timemachine_text.read_bytes())
    (served / "tampered.txt").write_bytes(timemachine_text.read_bytes() + b"\nan extra line\n")
    srv = _Server(served)
    yield srv
    srv.close()


def test_timemachine_downloads_verifies_and_caches(tmp_path, server, timemachine_text):
    assert hashlib.sha256(timemachine_text.read_bytes()).hexdigest() == D2L_SHA256
    cache = tmp_path / "cache"
    module = TimeMachine(cache_dir=str(cache), url=f"{server.url}/timemachine.txt",
                         num_train=100, num_val=50, num_test=50)
    x, _ = built(module)["train"]
    assert (cache / "timemachine.txt").read_bytes() == timemachine_text.read_bytes()
    # The verified cache is used from then on: a dead URL no longer matters.
    again = TimeMachine(cache_dir=str(cache), url="http://127.0.0.1:9/none", num_train=100, num_val=50, num_test=50)
    assert torch.equal(built(again)["train"][0], x)


def test_timemachine_checksum_mismatch_keeps_nothing(tmp_path, server):
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError, match=f"^path=None .*could not be downloaded .*sha256 .* expected {D2L_SHA256}"):
        TimeMachine(cache_dir=str(cache), url=f"{server.url}/tampered.txt")
    assert not cache.exists()  # not even the folder


def test_an_unreachable_timemachine_url_is_refused_as_the_module_is_built_naming_the_file_to_give(tmp_path):
    """Offline, or a dead url: refused once, as the launch validates, with what to pass instead (data.path)."""
    with pytest.raises(ConfigError) as refused:
        TimeMachine(cache_dir=str(tmp_path), url="http://127.0.0.1:9/timemachine.txt")
    assert refused.value.setting == "path" and refused.value.value is None
    assert refused.value.allowed.startswith(f"the path of a local copy of The Time Machine (timemachine.txt) "
                                            f"(sha256 {D2L_SHA256}): it is not in {tmp_path} and could not be "
                                            f"downloaded (")


@pytest.mark.parametrize("factory,setting,value", [
    (lambda: AddingProblem(seq_len=1), "seq_len", 1),
    (lambda: CopyMemory(seq_len=0), "seq_len", 0),
    (lambda: TimeMachine(seq_len=0), "seq_len", 0),
    (lambda: AddingProblem(batch_size=0), "batch_size", 0),
    (lambda: Digits(layout="columns"), "layout", "columns"),
])
def test_bad_data_settings_are_refused_by_name(factory, setting, value):
    with pytest.raises(ConfigError) as error:
        factory()
    assert error.value.setting == setting and error.value.value == value


def test_reference_models_on_the_same_splits_are_computed_once_and_cached(tmp_path, monkeypatch, timemachine_text):
    from rnnbench.data.references import cached_reference, ngram_perplexities

    monkeypatch.setenv("RNNBENCH_CACHE", str(tmp_path))
    digits = Digits()
    first = cached_reference(digits, {"layout": "rows"})
    assert first["name"].startswith("logistic regression") and 0.9 < first["test/accuracy"] < 1.0
    assert len(list((tmp_path / "references").glob("*.json"))) == 1
    digits.reference = lambda: pytest.fail("recomputed")  # the second call reads the cache
    assert cached_reference(digits, {"layout": "rows"}) == first

    data = TimeMachine(path=str(timemachine_text))
    reference = cached_reference(data, {"path": str(timemachine_text)})
    assert "character" in reference["name"] and 1 < reference["val/perplexity"] < 28
    # order 1 without context is the unigram: its perplexity is exp of the add-one unigram cross-entropy
    data.setup()
    inputs, targets = data.splits["val"]
    train_inputs, train_targets = data.splits["train"]
    text = torch.cat([train_inputs[0], train_targets[:, -1]])
    counts = torch.bincount(text, minlength=28).double()
    log_p = torch.log((counts + 1) / (counts.sum() + 28))
    expected = math.exp(-log_p[targets.flatten()].mean().item())
    assert ngram_perplexities(data.splits, 28, 1)["val/perplexity"] == pytest.approx(expected, rel=1e-9)


def test_an_empty_cache_variable_means_the_default_cache(monkeypatch, timemachine_text):
    """RNNBENCH_CACHE set but empty: the configs' ${oc.env:RNNBENCH_CACHE,...} give '', which is the default cache."""
    from rnnbench.data.files import default_cache_dir

    monkeypatch.setenv("RNNBENCH_CACHE", "")
    assert default_cache_dir() == "~/.cache/rnnbench"
    module = TimeMachine(cache_dir="", num_train=100, num_val=50, num_test=50)  # the suite seeded the default cache
    assert module.cache_file == Path("~/.cache/rnnbench/timemachine.txt").expanduser()
