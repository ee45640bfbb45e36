"""Sequential images: MNIST's IDX files read back exactly (plain and gzipped), in both layouts; pMNIST's one
permutation is the same for every split and seed and a true permutation; the splits are disjoint and seeded;
Fashion-MNIST comes from Debian's package (CI installs it), else a verified download kept in the cache; bad files and
settings are refused before any job with one line naming the setting; a short training run learns."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnbench.data.sequential_images as images_module
from rnnbench.cli import main
from rnnbench.config import build
from rnnbench.data import SequentialImages
from rnnbench.data.base import step_permutation
from rnnbench.data.idx import IdxError, read_header, read_idx, write_idx
from rnnbench.data.sequential_images import DEBIAN_DIR, FASHION_MNIST_CONTENT_SHA256, NAMES, WHAT
from rnnbench.errors import ConfigError

import test_bad_input
from test_bad_input import assert_refused
from test_training import train_briefly

empty_cwd = test_bad_input.empty_cwd  # the fixture: an empty working dir no job may write to

torch.set_num_threads(1)
TRAIN, TEST = 40, 20  # the tiny set's images


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file's bytes, written with numpy alone (independent of rnnbench.data.idx): magic, big-endian sizes,
    the values."""
    code = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C}[array.dtype]
    header = np.array([magic if magic is not None else code << 8 | array.ndim, *array.shape], dtype=">u4")
    return header.tobytes() + array.tobytes()


def put(folder: Path, name: str, content: bytes, gz: bool = False) -> Path:
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def tiny_set(folder: Path, gz: bool = False) -> dict[str, np.ndarray]:
    """Four tiny IDX files of MNIST's names in ``folder`` (random 28x28 images, labels i % 10); their arrays."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (TRAIN, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(TRAIN) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (TEST, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(TEST)[::-1] % 10).astype(np.uint8)}
    arrays["train-images-idx3-ubyte"][0] = 255  # a white image and a black one: the ends of [0, 1]
    arrays["train-images-idx3-ubyte"][1] = 0
    for name, array in arrays.items():
        put(folder, name, idx_bytes(array), gz=gz)
    return arrays


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, dict[str, np.ndarray]]:
    return tmp_path / "tiny", tiny_set(tmp_path / "tiny")


@pytest.fixture(scope="module")
def fashion_mnist() -> Path:
    """Debian's Fashion-MNIST: skipped where it is not installed, a failure under CI (.ci/run installs it)."""
    if not all((DEBIAN_DIR / f"{name}.gz").is_file() for name in NAMES):
        if os.environ.get("CI"):
            pytest.fail(f"CI has no Fashion-MNIST in {DEBIAN_DIR}: .ci/run installs dataset-fashion-mnist with apt-get")
        pytest.skip(f"Fashion-MNIST is not installed in {DEBIAN_DIR} (apt-get install dataset-fashion-mnist)")
    return DEBIAN_DIR


def built(module: SequentialImages) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    module.setup()
    return module.splits


# --- the IDX format -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_files_written_with_numpy_read_back_exactly(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    ints = np.array([[1, -2, 70000], [3, 4, -5]], dtype=">i4")
    for name, array in (("images", images), ("ints", ints)):
        path = put(tmp_path, name, idx_bytes(array), gz=gz)
        header = read_header(path)
        assert header.shape == array.shape and header.dtype == array.dtype
        assert header.magic == {"images": 0x803, "ints": 0xC02}[name] and header.offset == 4 + 4 * array.ndim
        read = read_idx(path)
        assert read.dtype == array.dtype and np.array_equal(read, array)
        again = write_idx(tmp_path / f"again-{path.name}", read)  # rnnbench's writer gives numpy's bytes
        assert (gzip.decompress(again.read_bytes()) if gz else again.read_bytes()) == idx_bytes(array)


@pytest.mark.parametrize("content,found", [
    (b"not an IDX file at all", "magic number 0x6e6f7420, not an IDX file's"),
    (b"\0\0\x08", "3 bytes, too short for an IDX header"),
    (b"\0\0\x08\x03\0\0\0\x02", "a header cut short (magic number 0x00000803, 3 dimensions)"),
    (idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-1],
     "1583 bytes, while its header (shape (2, 28, 28)) announces 1584"),
    (idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"\0",
     "1585 bytes, while its header (shape (2, 28, 28)) announces 1584"),
], ids=["text", "short", "cut header", "truncated", "trailing"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_file_that_is_not_the_idx_it_claims_is_refused_saying_what_was_found(tmp_path, content, found, gz):
    path = put(tmp_path, "file", content, gz=gz)
    with pytest.raises(IdxError) as error:
        read_idx(path)
    assert str(error.value) == found


# --- the data module on a tiny set --------------------------------------------------------------------------------

@pytest.mark.parametrize("layout,shape", [("pixels", (784, 1)), ("rows", (28, 28))])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_layouts_read_the_images_in_scan_line_order_scaled_to_0_1(tmp_path, layout, shape, gz):
    arrays = tiny_set(tmp_path / "set", gz=gz)
    module = SequentialImages(path=str(tmp_path / "set"), layout=layout, val_size=10, name="tiny", batch_size=8)
    assert module.split_samples == {"train": 30, "val": 10, "test": TEST}
    task = module.task
    assert (task.name, task.input_kind, task.input_size, task.output_size, task.seq_len) == \
        ("sequential_images", "real", shape[1], 10, shape[0])
    assert (task.per_step, task.loss, task.metric, task.causal) == (False, "cross_entropy", "accuracy", False)
    assert task.baseline_accuracy == 0.1 and task.baseline_loss == pytest.approx(math.log(10))
    splits = built(module)
    for split, (inputs, targets) in splits.items():
        assert inputs.dtype == torch.float32 and inputs.shape[1:] == shape and targets.dtype == torch.int64
        assert len(inputs) == len(targets) == module.split_samples[split]
    # test: the whole file, in its order; each image its 784 pixels in scan-line order, / 255
    inputs, targets = splits["test"]
    raw = torch.from_numpy(arrays["t10k-images-idx3-ubyte"].astype(np.float32))
    assert torch.equal(inputs, (raw / 255).reshape(TEST, *shape))
    assert torch.equal(targets, torch.from_numpy(arrays["t10k-labels-idx1-ubyte"].astype(np.int64)))
    # train and val: every training image exactly once, with its own label, white 1.0 and black 0.0
    seen = torch.cat([splits["train"][0], splits["val"][0]]).reshape(TRAIN, 784)
    labels = torch.cat([splits["train"][1], splits["val"][1]])
    pixels = torch.from_numpy(arrays["train-images-idx3-ubyte"].reshape(TRAIN, 784).astype(np.float32))
    match = [int(torch.nonzero((pixels / 255 == row).all(dim=1))[0]) for row in seen]
    assert sorted(match) == list(range(TRAIN)) and labels.tolist() == [i % 10 for i in match]
    assert seen.max() == 1.0 and seen.min() == 0.0
    batch = next(iter(module.train_dataloader()))
    assert [t.shape for t in batch] == [(8, *shape), (8,)]


def test_the_validation_draw_is_seeded_and_num_train_takes_a_prefix_of_the_same_order(tiny):
    folder, _ = tiny
    whole = built(SequentialImages(path=str(folder), val_size=10, seed=3))
    again = built(SequentialImages(path=str(folder), val_size=10, seed=3))
    part = built(SequentialImages(path=str(folder), val_size=10, num_train=7, seed=3))
    other = built(SequentialImages(path=str(folder), val_size=10, seed=4))
    for split in ("train", "val", "test"):
        assert torch.equal(whole[split][0], again[split][0])
    assert torch.equal(part["val"][0], whole["val"][0]) and torch.equal(part["train"][0], whole["train"][0][:7])
    assert not torch.equal(other["val"][0], whole["val"][0]) and torch.equal(other["test"][0], whole["test"][0])


def test_the_permutation_is_one_fixed_permutation_of_the_pixels_for_every_split_and_seed(tiny):
    folder, _ = tiny
    permutation = step_permutation(784, 0)
    assert torch.equal(torch.sort(permutation).values, torch.arange(784))  # a real permutation ...
    assert not torch.equal(permutation, torch.arange(784))  # ... not the identity
    assert not torch.equal(step_permutation(784, 1), permutation)  # permutation_seed picks another
    modules = {(seed, permute): SequentialImages(path=str(folder), val_size=10, permute=permute, seed=seed)
               for seed in (0, 5) for permute in (False, True)}
    for seed in (0, 5):
        assert torch.equal(modules[seed, True].permutation(), permutation)  # seed leaves it alone
        plain, permuted = built(modules[seed, False]), built(modules[seed, True])
        for split in ("train", "val", "test"):
            x, y = plain[split][0].flatten(1), permuted[split][0].flatten(1)
            assert torch.equal(y, x[:, permutation]) and torch.equal(permuted[split][1], plain[split][1])
            grey = [(z * 255).round().long().sum(dim=1) for z in (x, y)]
            assert torch.equal(*grey)  # each image's own grey levels, only reordered
    assert torch.equal(built(modules[0, True])["test"][0], built(modules[5, True])["test"][0])
    rows = built(SequentialImages(path=str(folder), val_size=10, permute=True, layout="rows"))
    assert torch.equal(rows["test"][0].reshape(TEST, 784, 1), built(modules[0, True])["test"][0])
    other = built(SequentialImages(path=str(folder), val_size=10, permute=True, permutation_seed=1))
    assert torch.equal(other["test"][0].flatten(1), built(modules[0, False])["test"][0].flatten(1)[:,
                       step_permutation(784, 1)])


def test_memory_and_sizes_are_known_before_the_images_are_read(tiny):
    folder, _ = tiny
    module = SequentialImages(path=str(folder), val_size=4, num_train=9)
    assert module.split_samples == {"train": 9, "val": 4, "test": TEST} and module.splits == {}
    assert module.memory_bytes() == 785 * (TRAIN + TEST) + (4 * 784 + 8) * (9 + 4 + TEST)


# --- refused, with one line naming the setting --------------------------------------------------------------------

def refusal(**settings) -> str:
    with pytest.raises(ConfigError) as error:
        SequentialImages(**settings)
    assert len(str(error.value).splitlines()) == 1
    return str(error.value)


def test_a_directory_that_lacks_a_file_is_refused_naming_it(tiny):
    folder, _ = tiny
    (folder / "t10k-labels-idx1-ubyte").unlink()
    assert refusal(path=str(folder)) == (f"path='{folder}' is not allowed: a directory holding {WHAT}: it lacks "
                                         f"t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)")
    assert refusal(path=str(folder / "nothing")) == (f"path='{folder / 'nothing'}' is not allowed: an existing "
                                                     f"directory holding {WHAT}")
    assert WHAT == "MNIST's four IDX files (28x28 images of classes 0-9 and their labels)"


@pytest.mark.parametrize("name,array,magic,found", [
    ("train-images-idx3-ubyte", np.zeros(TRAIN, np.uint8), None,
     "has magic number 0x00000801 (expected 0x00000803: unsigned bytes in 3 dimensions)"),
    ("t10k-labels-idx1-ubyte", np.zeros(TEST, np.uint8), 0x12345678,
     "holds magic number 0x12345678, not an IDX file's"),
    ("t10k-images-idx3-ubyte", np.zeros((TEST, 32, 32), np.uint8), None,
     "holds 20 images of 32x32 pixels (expected at least one, of 28x28)"),
    ("train-labels-idx1-ubyte", np.zeros(TRAIN - 1, np.uint8), None,
     "holds 39 labels for the 40 images of train-images-idx3-ubyte"),
    ("train-labels-idx1-ubyte", np.full(TRAIN, 10, np.uint8), None, "holds label 10 (expected classes 0-9)"),
], ids=["labels as images", "bad magic", "32x32", "too few labels", "label 10"])
def test_a_file_of_the_wrong_magic_or_shape_is_refused_naming_it_and_what_it_holds(tiny, name, array, magic, found):
    folder, _ = tiny
    put(folder, name, idx_bytes(array, magic))
    assert refusal(path=str(folder)) == f"path='{folder}' is not allowed: {WHAT}: {folder / name} {found}"


@pytest.mark.parametrize("settings,message", [
    ({"layout": "columns"}, "layout='columns' is not allowed: one of pixels, rows"),
    ({"permute": "yes"}, "permute='yes' is not allowed: true or false"),
    ({"permute": 1}, "permute=1 is not allowed: true or false"),
    ({"permutation_seed": -1}, "permutation_seed=-1 is not allowed: an integer >= 0 and <= 4294967295"),
    ({"val_size": 0}, "val_size=0 is not allowed: an integer >= 1"),
    ({"val_size": 40}, "val_size=40 is not allowed: an integer from 1 to 39 (the training file holds 40 images, one "
                       "at least is left to train on)"),
    ({"num_train": 0}, "num_train=0 is not allowed: null (every training image val_size leaves) or an integer >= 1"),
    ({"num_train": 31}, "num_train=31 is not allowed: null or an integer from 1 to 30 (the training images "
                        "val_size=10 leaves)"),
], ids=lambda value: str(value) if isinstance(value, dict) else "")
def test_bad_settings_are_refused_with_what_is_allowed(tiny, settings, message):
    folder, _ = tiny
    assert refusal(path=str(folder), **{"val_size": 10, **settings}) == message


def test_another_set_by_name_needs_its_path():
    assert refusal(name="mnist") == ("name='mnist' is not allowed: fashion_mnist while data.path is null (the one set "
                                     f"found without it); give data.path, a directory holding {WHAT}, for another")


@pytest.mark.parametrize("arguments,setting,words", [
    (("data.path={missing}",), "data.path", "it lacks t10k-labels-idx1-ubyte (or t10k-labels-idx1-ubyte.gz)"),
    (("data.path={bad}",), "data.path", "has magic number 0x00000801 (expected 0x00000803"),
    (("data.path={good}", "data.layout=columns"), "data.layout", "one of pixels, rows"),
    (("data.path={good}", "data.permute=1"), "data.permute", "true or false"),
    (("data.path={good}", "data.val_size=40"), "data.val_size", "an integer from 1 to 39"),
], ids=["missing file", "wrong magic", "layout", "permute", "val_size"])
def test_the_launch_refuses_bad_files_and_settings_before_any_job(arguments, setting, words, tmp_path, empty_cwd,
                                                                  capsys):
    folders = {name: tmp_path / name for name in ("missing", "bad", "good")}
    for folder in folders.values():
        tiny_set(folder)
    (folders["missing"] / "t10k-labels-idx1-ubyte").unlink()
    put(folders["bad"], "train-images-idx3-ubyte", idx_bytes(np.zeros(TRAIN, np.uint8)))
    code = main(["train", "data=sequential_images", *[a.format(**folders) for a in arguments]])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, setting, empty_cwd)
    assert words in err


# --- Fashion-MNIST: Debian's package, else a verified download into the cache ------------------------------------

def test_fashion_mnist_comes_from_debians_package_with_the_official_content(fashion_mnist, compose_config):
    module = build(compose_config("data=sequential_images", "data.num_train=100", "data.val_size=50").data, "data")
    assert module.files == {name: fashion_mnist / f"{name}.gz" for name in NAMES}
    assert module.counts == {"train": 60_000, "test": 10_000} and module.name == "fashion_mnist"
    assert module.split_samples == {"train": 100, "val": 50, "test": 10_000}
    assert (module.task.seq_len, module.task.input_size, module.permute) == (784, 1, False)  # the config's defaults
    # Debian recompressed the official files: other .gz hashes, the same IDX content
    for name in NAMES:
        content = gzip.decompress(module.files[name].read_bytes())
        assert hashlib.sha256(content).hexdigest() == FASHION_MNIST_CONTENT_SHA256[name]
    splits = built(module)
    test_inputs, test_targets = splits["test"]
    assert torch.bincount(test_targets).tolist() == [1000] * 10  # 1,000 of each class
    assert test_targets[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # ankle boot, pullover, trouser, ...
    assert test_inputs.shape == (10_000, 784, 1) and 0 <= test_inputs.min() and test_inputs.max() == 1
    full = SequentialImages()  # the defaults: 55,000 / 5,000 / 10,000
    assert full.split_samples == {"train": 55_000, "val": 5_000, "test": 10_000}
    assert 250e6 < full.memory_bytes() < 300e6  # 70,000 x 784 bytes read + their float32 copies


@pytest.fixture
def served(tmp_path, monkeypatch) -> Path:
    """No Debian copy; the 'official' URL a folder of tiny gzipped files (file://), their hashes the expected."""
    folder = tmp_path / "served"
    tiny_set(folder, gz=True)
    monkeypatch.setattr(images_module, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(images_module, "FASHION_MNIST_URL", f"{folder.as_uri()}/")
    monkeypatch.setattr(images_module, "FASHION_MNIST_SHA256", {
        name: hashlib.sha256((folder / f"{name}.gz").read_bytes()).hexdigest() for name in NAMES})
    return folder


def test_without_debians_copy_the_files_are_downloaded_verified_and_kept_in_the_cache(served, tmp_path):
    cache = tmp_path / "cache"
    module = SequentialImages(cache_dir=str(cache), val_size=10)
    assert module.files == {name: cache / "fashion_mnist" / f"{name}.gz" for name in NAMES}
    for name in NAMES:
        assert (cache / "fashion_mnist" / f"{name}.gz").read_bytes() == (served / f"{name}.gz").read_bytes()
        (served / f"{name}.gz").unlink()  # offline from now on: the cache serves
    again = SequentialImages(cache_dir=str(cache), val_size=10)
    assert torch.equal(built(again)["test"][0], built(module)["test"][0])


def test_a_download_with_another_hash_is_not_kept(served, tmp_path, monkeypatch):
    monkeypatch.setitem(images_module.FASHION_MNIST_SHA256, "train-images-idx3-ubyte", "0" * 64)
    message = refusal(cache_dir=str(tmp_path / "cache"))
    served_file = served / "train-images-idx3-ubyte.gz"
    actual = hashlib.sha256(served_file.read_bytes()).hexdigest()
    assert message == (f"path=None is not allowed: a directory holding {WHAT}: Fashion-MNIST is not installed in "
                       f"{tmp_path / 'no-debian'} (apt-get install dataset-fashion-mnist), and its "
                       f"train-images-idx3-ubyte.gz is not in {tmp_path / 'cache' / 'fashion_mnist'} and could not be "
                       f"downloaded ({served_file.as_uri()!r} served a file with sha256 {actual}, expected {'0' * 64}; "
                       f"not used)")
    assert not (tmp_path / "cache" / "fashion_mnist" / "train-images-idx3-ubyte.gz").exists()


def test_an_offline_machine_without_fashion_mnist_is_told_what_to_install_or_give(served, tmp_path, monkeypatch,
                                                                                  empty_cwd, capsys):
    monkeypatch.setattr(images_module, "FASHION_MNIST_URL", "file:///no/such/folder/")
    code = main(["train", "data=sequential_images", f"data.cache_dir={tmp_path / 'cache'}"])
    out, err = capsys.readouterr()
    assert_refused(code, out, err, "data.path", empty_cwd)
    assert "apt-get install dataset-fashion-mnist" in err and str(tmp_path / "cache" / "fashion_mnist") in err


# --- a short real training run ------------------------------------------------------------------------------------

def test_a_short_training_on_fashion_mnist_rows_lowers_the_loss(fashion_mnist, compose_config):
    cfg = compose_config("data=sequential_images", "data.layout=rows", "data.num_train=512", "data.val_size=256",
                         "data.batch_size=32", "model.cell=gru", "model.hidden_size=32", "optim.lr=0.01", "threads=1")
    before, after, test = train_briefly(cfg, 40, limit_test_batches=2)
    assert before == pytest.approx(math.log(10), abs=0.2) and after < 0.75 * before, (before, after)
    assert set(test) == {"test/loss", "test/accuracy"} and test["test/accuracy"] > 0.3


def test_permuted_pixels_train_end_to_end(fashion_mnist, compose_config):
    cfg = compose_config("data=sequential_images", "data.permute=true", "data.num_train=64", "data.val_size=32",
                         "data.batch_size=16", "model.cell=lstm", "model.hidden_size=8", "threads=1")
    before, after, test = train_briefly(cfg, 3, limit_test_batches=2)
    assert math.isfinite(after) and after != before and 0 <= test["test/accuracy"] <= 1
