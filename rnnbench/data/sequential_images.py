"""Sequential images: 28x28 grey-level images in MNIST's IDX format, read one pixel (or one row) per step and
classified from the last state: sequential MNIST, its permuted variant (Le et al. 2015) and Fashion-MNIST.

The benchmark of Le et al. (2015), Arjovsky et al. (2016) and Bai et al. (2018, Table 1: sMNIST and pMNIST):
the 784 pixels of an image in scan-line order are 784 steps of one feature; pMNIST reads them in one fixed random
order, the same for every image, which breaks the pixels' local structure and spreads the dependencies over the
whole sequence. Fashion-MNIST (Xiao et al. 2017, Zalando's 28x28 article images, MIT licence) is the default set:
Debian packages it (``dataset-fashion-mnist``) and it is a drop-in replacement of MNIST's files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from rnnbench.data.base import InMemoryDataModule, Split, step_permutation
from rnnbench.data.files import cache_path, cached_or_downloaded
from rnnbench.data.idx import IdxError, read_header, read_idx
from rnnbench.data.task import Task
from rnnbench.errors import SEED_LIMIT, ConfigError, is_int_in, require, require_int

SIDE, CLASSES = 28, 10
PIXELS = SIDE * SIDE
LAYOUTS = {"pixels": (PIXELS, 1), "rows": (SIDE, SIDE)}  # name -> (steps, features per step)
# each split's (images, labels) file, as MNIST names them; each may be gzipped (NAME.gz)
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
NAMES = tuple(name for pair in FILES.values() for name in pair)
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801  # unsigned bytes in 3 dimensions, in 1

DEFAULT_NAME = "fashion_mnist"  # the one set found without a data.path
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's package dataset-fashion-mnist (gzipped files)
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # the official downloads
# SHA-256 of the gzipped files served at FASHION_MNIST_URL (as tensorflow/datasets' url_checksums/fashion_mnist.txt
# records them; their MD5s are the ones the Fashion-MNIST README publishes). Debian's package holds the same
# content recompressed, so its .gz files have other hashes: FASHION_MNIST_CONTENT_SHA256 is the content's.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FASHION_MNIST_CONTENT_SHA256 = {  # of the uncompressed IDX files
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
WHAT = "MNIST's four IDX files (28x28 images of classes 0-9 and their labels)"


class SequentialImages(InMemoryDataModule):
    """28x28 images as sequences, one class per image (``data=sequential_images``).

    ``layout="pixels"`` reads an image's 784 pixels in scan-line order as 784 steps of one feature (sequential
    MNIST), ``"rows"`` its 28 rows as 28 steps of 28 features. ``permute=true`` first reorders the 784 pixels by
    :func:`~rnnbench.data.base.step_permutation` ``(784, permutation_seed)``: one permutation for every image,
    split and ``seed`` (permuted MNIST). Inputs (B, T, F) float32, pixels scaled to [0, 1]; targets (B,) int64
    classes 0-9; the model reads each image to its end and classifies it once.

    Splits: ``val`` is a seeded random draw (not stratified: ``seed``) of ``val_size`` of the training file's images,
    ``train`` the rest in a seeded random order, cut to its first ``num_train`` (a CPU budget: a smaller
    ``num_train`` gives a subset of a larger one's, with the same ``val``), ``test`` the whole test file.

    The files: ``path``, a directory holding the four files of MNIST's names (``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``:
    MNIST, KMNIST or any set in that layout); else Fashion-MNIST, from Debian's package ``dataset-fashion-mnist``
    (:data:`DEBIAN_DIR`), else from ``cache_dir``/fashion_mnist, else downloaded from the official URLs and kept
    only if its SHA-256 matches. The headers (magic number, shape, size) and labels are checked as the module is
    built, so that every job of a sweep is checked before any starts; the images are read in :meth:`setup`.

    Args:
        layout: ``pixels`` (784 steps x 1 feature) or ``rows`` (28 x 28).
        permute: True for the fixed pixel permutation of pMNIST.
        permutation_seed: which permutation; independent of ``seed``.
        val_size: training images held out for validation.
        num_train: training images used (the first of the seeded order); None: all that ``val_size`` leaves.
        path: a directory of the four IDX files; None: Fashion-MNIST.
        cache_dir: where a download of Fashion-MNIST is kept.
        name: the image set's name: ``fashion_mnist`` without a ``path``, a label of one's choice with one.
        batch_size: images per batch.
        seed: seeds the validation draw, the ``num_train`` order and the training shuffle.
    """

    def __init__(self, layout: str = "pixels", permute: bool = False, permutation_seed: int = 0,
                 val_size: int = 5000, num_train: int | None = None, path: str | None = None,
                 cache_dir: str | None = None, name: str = DEFAULT_NAME, batch_size: int = 64, seed: int = 0):
        super().__init__(batch_size, seed)
        require(layout in LAYOUTS, "layout", layout, f"one of {', '.join(LAYOUTS)}")
        require(isinstance(permute, bool), "permute", permute, "true or false")
        self.permutation_seed = require_int(permutation_seed, "permutation_seed", 0, SEED_LIMIT)
        require_int(val_size, "val_size", 1)
        require(num_train is None or is_int_in(num_train, 1), "num_train", num_train,
                "null (every training image val_size leaves) or an integer >= 1")
        require(isinstance(name, str) and name != "", "name", name, "a non-empty string")
        require(path is None or isinstance(path, str) and path != "", "path", path,
                f"null (Fashion-MNIST) or a directory holding {WHAT}")
        require(path is not None or name == DEFAULT_NAME, "name", name,
                f"{DEFAULT_NAME} while data.path is null (the one set found without it); give data.path, a "
                f"directory holding {WHAT}, for another")
        self.layout, self.permute, self.name = layout, permute, name
        self.path_setting = path
        self.files = self.locate(None if path is None else Path(path).expanduser().resolve(), cache_dir)
        self.counts = self.check_files()
        train_images = self.counts["train"]
        require(val_size < train_images, "val_size", val_size,
                f"an integer from 1 to {train_images - 1} (the training file holds {train_images} images, one at "
                f"least is left to train on)")
        self.val_size = val_size
        left = train_images - val_size
        require(num_train is None or num_train <= left, "num_train", num_train,
                f"null or an integer from 1 to {left} (the training images val_size={val_size} leaves)")
        self.num_train = left if num_train is None else num_train
        self.require_memory(num_train=self.num_train, val_size=val_size)

    def locate(self, path: Path | None, cache_dir: str | None) -> dict[str, Path]:
        """Each of the four files (by MNIST's name): in ``path``, else Debian's, else the cache's or a verified
        download; a directory that lacks one is refused naming it."""
        cache = {name: cache_path(cache_dir, DEFAULT_NAME, f"{name}.gz") for name in NAMES}
        if path is not None:
            require(path.is_dir(), "path", self.path_setting, f"an existing directory holding {WHAT}")
            files = {}
            for name in NAMES:
                found = [path / file for file in (name, f"{name}.gz") if (path / file).is_file()]
                require(bool(found), "path", self.path_setting,
                        f"a directory holding {WHAT}: it lacks {name} (or {name}.gz)")
                files[name] = found[0]
            return files
        debian = {name: DEBIAN_DIR / f"{name}.gz" for name in NAMES}
        if all(file.is_file() for file in debian.values()):
            return debian
        files = {}
        for name in NAMES:
            try:
                files[name] = cached_or_downloaded(cache[name], f"{FASHION_MNIST_URL}{name}.gz",
                                                   FASHION_MNIST_SHA256[name], f"Fashion-MNIST's {name}.gz")
            except ConfigError as error:  # "...: it is not in DIR and could not be downloaded (REASON)"
                reason = error.allowed.split(": ", 1)[-1].removeprefix("it ").replace("data.url=", "")
                raise ConfigError("path", None, f"a directory holding {WHAT}: Fashion-MNIST is not installed in "
                                                f"{DEBIAN_DIR} (apt-get install dataset-fashion-mnist), and its "
                                                f"{name}.gz {reason}") from None
        return files

    def _refuse(self, file: Path, found: str) -> ConfigError:
        return ConfigError("path", self.path_setting, f"{WHAT}: {file} {found}")

    def check_files(self) -> dict[str, int]:
        """Each split's number of images, from the headers; the labels are read (a few kB) and checked."""
        counts = {}
        for split, (images_name, labels_name) in FILES.items():
            headers = {}
            for name, magic in ((images_name, IMAGES_MAGIC), (labels_name, LABELS_MAGIC)):
                try:
                    headers[name] = read_header(self.files[name])
                except IdxError as error:
                    raise self._refuse(self.files[name], f"holds {error}") from None
                found = headers[name].magic
                if found != magic:
                    raise self._refuse(self.files[name], f"has magic number 0x{found:08x} (expected 0x{magic:08x}: "
                                                         f"unsigned bytes in {magic & 0xFF} dimension"
                                                         f"{'s' if magic & 0xFF > 1 else ''})")
            count, *size = headers[images_name].shape
            if tuple(size) != (SIDE, SIDE) or count == 0:
                raise self._refuse(self.files[images_name], f"holds {count} images of {'x'.join(map(str, size))} "
                                                            f"pixels (expected at least one, of {SIDE}x{SIDE})")
            if headers[labels_name].shape != (count,):
                raise self._refuse(self.files[labels_name], f"holds {headers[labels_name].shape[0]} labels for the "
                                                            f"{count} images of {images_name}")
            labels = self.read(labels_name)
            if int(labels.max()) >= CLASSES:
                raise self._refuse(self.files[labels_name], f"holds label {int(labels.max())} (expected classes "
                                                            f"0-{CLASSES - 1})")
            counts[split] = count
        return counts

    def read(self, name: str) -> np.ndarray:
        """The values of one of the four files, its header already checked."""
        try:
            return read_idx(self.files[name])
        except IdxError as error:
            raise self._refuse(self.files[name], f"holds {error}") from None

    @property
    def split_samples(self) -> dict[str, int]:
        return {"train": self.num_train, "val": self.val_size, "test": self.counts["test"]}

    def memory_bytes(self) -> int:
        """The files' bytes as read (one per pixel), and the float32 inputs and int64 targets of the splits."""
        return (PIXELS + 1) * sum(self.counts.values()) + (4 * PIXELS + 8) * sum(self.split_samples.values())

    @property
    def task(self) -> Task:
        steps, features = LAYOUTS[self.layout]
        return Task(name="sequential_images", input_kind="real", input_size=features, output_size=CLASSES,
                    per_step=False, loss="cross_entropy", metric="accuracy", causal=False, seq_len=steps,
                    baseline_loss=math.log(CLASSES), baseline_accuracy=1 / CLASSES)  # 10 (near) balanced classes

    def permutation(self) -> torch.Tensor | None:
        """(784,) the pixels' reading order with ``permute``, else None (scan-line order)."""
        return step_permutation(PIXELS, self.permutation_seed) if self.permute else None

    def build_splits(self) -> dict[str, Split]:
        order = torch.randperm(self.counts["train"], generator=self.generator()).numpy()
        rows = {"train": order[self.val_size:self.val_size + self.num_train], "val": order[:self.val_size],
                "test": np.arange(self.counts["test"])}
        permutation = self.permutation()
        steps, features = LAYOUTS[self.layout]
        splits = {}
        for split, source in (("train", "train"), ("val", "train"), ("test", "test")):
            images_name, labels_name = FILES[source]
            images = self.read(images_name).reshape(-1, PIXELS)[rows[split]]  # a copy, (N, 784) uint8
            if permutation is not None:
                images = images[:, permutation.numpy()]
            inputs = torch.from_numpy(images).to(torch.float32).div_(255).reshape(-1, steps, features)
            splits[split] = (inputs, torch.from_numpy(self.read(labels_name)[rows[split]].astype(np.int64)))
        return splits
