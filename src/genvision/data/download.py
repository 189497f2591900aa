"""Named datasets fetched once into a cache, each file verified by its published SHA-256.

Files go to ``$GENVISION_CACHE`` (default ``~/.cache/genvision``) under the dataset name.
A download is streamed to a temporary file in the same folder, hashed, and renamed into
place only when the hash matches, so the cache never holds a partial or tampered file.
The URL base can be redirected to a mirror with ``base_url=`` or ``$GENVISION_MIRROR``
(``{mirror}/{dataset}/{file}``); tests use ``file://`` mirrors and never the network.

Checksums: MNIST and Fashion-MNIST from tensorflow/datasets
``tensorflow_datasets/url_checksums/{mnist,fashion_mnist}.txt``; CIFAR-10 (python
version) from ``keras/datasets/cifar10.py`` (``file_hash``).

**System copies.** Before downloading, a dataset is looked for where an operating system
package installs it: Debian's ``dataset-fashion-mnist`` puts the four Fashion-MNIST IDX
files under ``/usr/share/datasets/fashion-mnist/`` (``$GENVISION_FASHION_MNIST_DIR``
names another folder). Debian recompresses the files, so a system copy is verified by the
SHA-256 of each file's *decompressed* content (the published IDX files, hashes
independently listed by several projects) or, for an untouched copy of the download, by
the download's own hash. A copy that fails is named in a one-line error, never used.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..storage import atomic_write_bytes
from .base import ImageSet, check_split
from .cifar import META, TEST_BATCH, TRAIN_BATCHES, load_cifar
from .idx import load_idx

_CHUNK = 1 << 20
_DONE = ".extracted"


@dataclass(frozen=True)
class Remote:
    """A downloadable dataset: base URL, files and their SHA-256, and how to read it."""

    base_url: str
    files: dict[str, str]  # file name -> SHA-256 of the file as served
    reader: str  # "idx" or "cifar"
    description: str
    shape: tuple[int, int, int]
    splits: dict[str, int]


_MNIST_SPLITS = {"train": 54000, "val": 6000, "test": 10000, "all": 70000}
REMOTES: dict[str, Remote] = {
    "mnist": Remote(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        {"train-images-idx3-ubyte.gz":
             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
         "train-labels-idx1-ubyte.gz":
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
         "t10k-images-idx3-ubyte.gz":
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
         "t10k-labels-idx1-ubyte.gz":
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
        "idx", "MNIST handwritten digits, 60,000 train + 10,000 test, 28x28 grey (~11 MB)",
        (1, 28, 28), _MNIST_SPLITS),
    "fashion-mnist": Remote(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        {"train-images-idx3-ubyte.gz":
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
         "train-labels-idx1-ubyte.gz":
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
         "t10k-images-idx3-ubyte.gz":
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
         "t10k-labels-idx1-ubyte.gz":
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        "idx", "Zalando Fashion-MNIST, 60,000 train + 10,000 test, 28x28 grey (~30 MB)",
        (1, 28, 28), _MNIST_SPLITS),
    "cifar10": Remote(
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-python.tar.gz":
             "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"},
        "cifar", "CIFAR-10, 50,000 train + 10,000 test, 32x32 RGB, 10 classes (~163 MB)",
        (3, 32, 32), {"train": 45000, "val": 5000, "test": 10000, "all": 60000}),
}
FASHION_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot"]
#: SHA-256 of the decompressed IDX files, which system packages may recompress
RAW_SHA256: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz":
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz":
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz":
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz":
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
}
#: where operating-system packages install a dataset, and the variable that overrides it
SYSTEM_DIRS: dict[str, tuple[str, Path]] = {
    "fashion-mnist": ("GENVISION_FASHION_MNIST_DIR", Path("/usr/share/datasets/fashion-mnist")),
}
_OFFLINE_FIX = ("work offline with an embedded dataset (digits, mnist5k, faces, photos), or "
                "point --data at local files with idx:DIR or folder:DIR")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$GENVISION_CACHE``, else ``~/.cache/genvision``."""
    root = cache_dir or os.environ.get("GENVISION_CACHE") or Path.home() / ".cache" / "genvision"
    return Path(root).expanduser()


def _base_url(name: str, base_url: str | None) -> str:
    if base_url:
        return base_url.rstrip("/") + "/"
    mirror = os.environ.get("GENVISION_MIRROR")
    return f"{mirror.rstrip('/')}/{name}/" if mirror else REMOTES[name].base_url


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` via a temp file; rename only when the SHA-256 matches.

    Raises:
        DataError: offline / HTTP error (naming offline alternatives), or checksum mismatch.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DataError(f"cannot download {url} ({reason})", _OFFLINE_FIX) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if h.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{url} failed its SHA-256 check (expected {sha256}, got "
                        f"{h.hexdigest()}); the download was discarded",
                        "retry later or use another mirror with --data / $GENVISION_MIRROR")
    os.replace(tmp, dest)
    return dest


def _needed_files(name: str, split: str) -> list[str]:
    files = list(REMOTES[name].files)
    if REMOTES[name].reader != "idx" or split == "all":
        return files
    prefix = "t10k" if split == "test" else "train"
    return [f for f in files if f.startswith(prefix)]


def _extract_cifar(archive: Path, folder: Path) -> None:
    """Copy out only the known batch files; member paths are never used (no traversal)."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            base = member.name.rsplit("/", 1)[-1]
            if member.isfile() and base in wanted:
                atomic_write_bytes(folder / base, tar.extractfile(member).read())
                wanted.discard(base)
    if wanted:
        raise DataError(f"{archive} lacks {sorted(wanted)}", f"delete {archive} and retry")
    atomic_write_bytes(folder / _DONE, b"")  # written last: extraction finished


def fetch(name: str, split: str = "all", cache_dir: str | os.PathLike | None = None,
          base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Make sure the files ``split`` of dataset ``name`` needs are cached; return their folder.

    Already-cached files are used as they are (they were verified when written).
    """
    remote = REMOTES[name]
    folder = cache_root(cache_dir) / name

    def ensure(fname: str) -> Path:
        if not (folder / fname).is_file():
            download_file(_base_url(name, base_url) + fname, folder / fname,
                          remote.files[fname], timeout)
        return folder / fname

    if remote.reader == "cifar":
        batches = folder / "cifar-10-batches-py"
        if not (batches / _DONE).is_file():
            _extract_cifar(ensure("cifar-10-python.tar.gz"), batches)
        return batches
    for fname in _needed_files(name, split):
        ensure(fname)
    return folder


def load_remote(name: str, split: str, split_seed: int = 0,
                cache_dir: str | os.PathLike | None = None,
                base_url: str | None = None) -> ImageSet:
    """Load downloadable dataset ``name`` (fetching it first if needed)."""
    check_split(split)
    folder = system_copy(name, split) or fetch(name, split, cache_dir, base_url)
    if REMOTES[name].reader == "cifar":
        return load_cifar(str(folder), split, split_seed, source=name)
    # the cache may hold only the t10k files a test split needed: still the official split
    ds = load_idx(str(folder), split, split_seed, source=name, official_split=True)
    if name == "fashion-mnist":
        ds.class_names = list(FASHION_CLASSES)
    return ds


def _sha256_gunzip(path: Path) -> str:
    h = hashlib.sha256()
    with gzip.open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _verified(path: Path, size: int, mtime_ns: int, download_sha: str, raw_sha: str) -> bool:
    """Whether one system file is the published one (memoised per size and mtime: a
    process checks each file once)."""
    try:
        if sha256_file(path) == download_sha:
            return True
        return bool(raw_sha) and _sha256_gunzip(path) == raw_sha
    except (OSError, EOFError, gzip.BadGzipFile):
        return False


def system_copy(name: str, split: str = "all") -> Path | None:
    """The folder of a verified system copy of ``name`` holding the files ``split`` needs,
    or None when there is none (then the dataset is downloaded).

    The folder is ``$GENVISION_FASHION_MNIST_DIR`` (for fashion-mnist) when set, else where
    the system package installs it. A folder that exists but fails verification raises.

    Raises:
        DataError: a file is missing, unreadable or not the published one.
    """
    if name not in SYSTEM_DIRS:
        return None
    var, default = SYSTEM_DIRS[name]
    folder = Path(os.environ[var]).expanduser() if os.environ.get(var) else default
    if not folder.is_dir():
        if os.environ.get(var):
            raise DataError(f"${var} names {folder}, which is not a folder",
                            f"point ${var} at the folder of the four IDX files, or unset it")
        return None
    for fname in _needed_files(name, split):
        path = folder / fname
        if not path.is_file():
            raise DataError(f"the system copy of {name} in {folder} lacks {fname}",
                            f"reinstall the package (apt-get install --reinstall "
                            f"dataset-{name}) or set ${var} to a complete copy")
        st = path.stat()
        if not _verified(path.resolve(), st.st_size, st.st_mtime_ns,
                         REMOTES[name].files[fname], RAW_SHA256[name].get(fname, "")):
            raise DataError(f"{path} is not the published {name} file (SHA-256 mismatch)",
                            f"reinstall the package or set ${var} to a good copy")
    return folder


def dataset_location(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Where ``load_dataset(name)`` finds the files: a system copy, the download cache, or
    nowhere yet (for ``data list``)."""
    try:
        found = system_copy(name)
    except DataError as exc:
        return f"system copy refused: {exc.problem}"
    if found is not None:
        return f"system copy {found}"
    folder = cache_root(cache_dir) / name
    if REMOTES[name].reader == "cifar":
        return (f"cached {folder}" if (folder / "cifar-10-batches-py" / _DONE).is_file()
                else "not yet downloaded")
    cached = all((folder / f).is_file() for f in REMOTES[name].files)
    return f"cached {folder}" if cached else "not yet downloaded"


def cached_mnist_test(cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether the download cache already holds the MNIST test files (verified when they
    were written), so ``load_dataset("mnist", "test")`` needs no network."""
    folder = cache_root(cache_dir) / "mnist"
    return all((folder / f).is_file() for f in _needed_files("mnist", "test"))


def remote_info() -> list[dict]:
    """Rows for ``list_datasets()``."""
    return [{"name": n, "kind": "download", "description": r.description,
             "shape": list(r.shape), "size": r.splits["all"], "splits": dict(r.splits),
             "location": dataset_location(n)}
            for n, r in REMOTES.items()]
