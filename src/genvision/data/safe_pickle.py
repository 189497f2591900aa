"""Unpickle a file from the internet WITHOUT running its code or letting it size our memory.

The CIFAR-10 "python version" batches (https://www.cs.toronto.edu/~kriz/cifar.html) are
pickles, and ``pickle.load`` runs whatever code a file names. :class:`RestrictedUnpickler`
resolves exactly the NumPy globals an array needs (``_reconstruct``, ``ndarray``,
``dtype``, ``_frombuffer``) and refuses every other global (``os.system``,
``builtins.eval``, ...). Dicts, lists, bytes, strings and numbers need no global at all.

Even NumPy's own globals are not safe on hostile input: ``_reconstruct(ndarray, shape,
dtype)`` and ``ndarray(shape)`` allocate whatever shape they are given, and
``ndarray.__setstate__`` of an object-dtype state allocates its shape before reading the
list (a crafted batch asked for a 745 GB array). So the names resolve to *stand-ins* that
build nothing until the array's data is in hand: an array is made only from bytes that
are in the file, by ``np.frombuffer`` (no copy), after its shape x item size has been
checked against those bytes, the file's size and :data:`MAX_ARRAY_BYTES`. Dtypes are
plain numbers only (no objects, records or sub-arrays). The pickle's memo indices are
checked by a scan of its opcodes first (a ``LONG_BINPUT`` of 2**31 makes CPython's
unpickler allocate a 16 GB memo table before anything else happens).
"""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

#: the largest array a pickle may hold (4 GiB; the CIFAR-10 batches hold 30 MB each)
MAX_ARRAY_BYTES = 1 << 32
#: the most dimensions an array may have (NumPy's own limit is 64)
MAX_NDIM = 32
#: NumPy dtype kinds an array may have: bool, signed/unsigned integers, floats
_PLAIN_KINDS = "biuf"
_MEMO_PUTS = ("PUT", "BINPUT", "LONG_BINPUT")


class _Refused(pickle.UnpicklingError):
    """A pickle that asks for something a plain data file never needs."""


def _plain_dtype(code: object) -> np.dtype:
    """A plain numeric dtype from a code such as ``b"u1"`` / ``"<f4"``; refuse anything else."""
    if isinstance(code, bytes):
        code = code.decode("ascii", errors="replace")
    if not isinstance(code, str) or len(code) > 8:
        raise _Refused(f"array dtype {code!r} is not a plain number type")
    try:
        dtype = np.dtype(code)
    except TypeError as exc:
        raise _Refused(f"array dtype {code!r} is not a dtype ({exc})") from None
    if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Refused(f"array dtype {code!r} is not a plain number type")
    return dtype


class _DtypeStub:
    """Stands in for ``numpy.dtype(code, align, copy)`` until its state (byte order) is set."""

    def __init__(self, code: object, align: object = False, copy: object = False) -> None:
        self.dtype = _plain_dtype(code)

    def __setstate__(self, state: object) -> None:
        # (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 5 or any(
                s is not None for s in state[2:5]):
            raise _Refused("array dtype with sub-arrays or fields")
        order = state[1].decode() if isinstance(state[1], bytes) else state[1]
        if order not in ("<", ">", "=", "|"):
            raise _Refused(f"array dtype byte order {order!r}")
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(order)


def _dtype_of(value: object) -> np.dtype:
    if isinstance(value, _DtypeStub):
        return value.dtype
    return _plain_dtype(value)


def _shape(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > MAX_NDIM or not all(
            type(s) is int and s >= 0 for s in shape):
        raise _Refused(f"array shape {shape!r} is not a tuple of at most {MAX_NDIM} sizes")
    return shape


class _ArrayStub:
    """Stands in for ``_reconstruct(ndarray, ...)`` until ``__setstate__`` brings the data.

    ``array`` is the real array once the state has been checked (None before).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget  # the file's size in bytes: no array may need more
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        # (version, shape, dtype, is_fortran, rawdata); very old pickles omit the version
        if isinstance(state, tuple) and len(state) == 4:
            state = (1, *state)
        if not isinstance(state, tuple) or len(state) != 5:
            raise _Refused("array state is not (version, shape, dtype, order, data)")
        _, shape, dtype, fortran, raw = state
        self.array = _from_bytes(raw, _dtype_of(dtype), _shape(shape),
                                 "F" if fortran else "C", self.budget)


def _from_bytes(raw: object, dtype: np.dtype, shape: tuple[int, ...], order: str,
                budget: int) -> np.ndarray:
    """The array over ``raw`` after checking its size; never allocates more than ``raw``."""
    if isinstance(raw, pickle.PickleBuffer):
        raw = raw.raw().tobytes()
    if not isinstance(raw, bytes | bytearray):
        raise _Refused(f"array data is a {type(raw).__name__}, not bytes")
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if nbytes > min(MAX_ARRAY_BYTES, budget):
        raise _Refused(f"an array of shape {list(shape)} needs {nbytes} bytes but the file "
                       f"has {budget}")
    if nbytes != len(raw):
        raise _Refused(f"an array of shape {list(shape)} needs {nbytes} bytes of data, the "
                       f"file gives {len(raw)}")
    if nbytes == 0:
        return np.zeros(shape, dtype)
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order)


class _NdarrayMarker:
    """Stands in for ``numpy.ndarray``: only ever the first argument of ``_reconstruct``."""

    def __new__(cls, *args: object, **kwargs: object):
        raise _Refused("a pickle may not call numpy.ndarray directly")


def _reconstruct_factory(budget: int):
    def _reconstruct(subtype: object, shape: object, dtype: object) -> _ArrayStub:
        """``numpy.core.multiarray._reconstruct``: allocates nothing; the state brings data."""
        if subtype is not _NdarrayMarker:
            raise _Refused("_reconstruct of something other than numpy.ndarray")
        _shape(shape)
        _dtype_of(dtype)
        return _ArrayStub(budget)
    return _reconstruct


def _frombuffer_factory(budget: int):
    def _frombuffer(buf: object, dtype: object, shape: object, order: object) -> np.ndarray:
        """``numpy.core.numeric._frombuffer`` (protocol-5 pickles), size-checked first."""
        return _from_bytes(buf, _dtype_of(dtype), _shape(shape),
                           "F" if order == "F" else "C", budget)
    return _frombuffer


_MODULES = ("numpy.core", "numpy._core")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can build plain containers and size-checked NumPy arrays, nothing else.

    Args:
        data: the whole pickle; its length is the budget no array may exceed.
    """

    def __init__(self, data: bytes) -> None:
        # encoding="bytes": the CIFAR batches were written by Python 2, whose str must
        # stay bytes (their dict keys are b"data", b"labels")
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._budget = len(data)

    def find_class(self, module: str, name: str):
        if module in (f"{m}.multiarray" for m in _MODULES) and name == "_reconstruct":
            return _reconstruct_factory(self._budget)
        if module in (f"{m}.numeric" for m in _MODULES) and name == "_frombuffer":
            return _frombuffer_factory(self._budget)
        if module == "numpy" and name == "ndarray":
            return _NdarrayMarker
        if module == "numpy" and name == "dtype":
            return _DtypeStub
        raise _Refused(f"refusing global {module}.{name}")

    def load(self) -> Any:
        return _finish(super().load(), depth=0)


def _finish(obj: object, depth: int) -> object:
    """Replace every array stand-in by its array (containers only, a few levels deep)."""
    if isinstance(obj, _ArrayStub):
        if obj.array is None:
            raise _Refused("an array without its data")
        return obj.array
    if isinstance(obj, _DtypeStub):
        return obj.dtype
    if depth > 8:
        return obj
    if isinstance(obj, dict):
        return {k: _finish(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finish(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v, depth + 1) for v in obj)
    return obj


def _check_opcodes(data: bytes) -> None:
    """Refuse memo indices no real pickle uses, before CPython sizes its memo table by them."""
    puts = 0
    for op, arg, _ in pickletools.genops(data):
        if op.name in _MEMO_PUTS:
            if int(arg) > puts:
                raise _Refused(f"memo index {arg} out of order")
            puts += 1
        elif op.name == "MEMOIZE":
            puts += 1


def safe_unpickle(path: Path, what: str = "CIFAR batch") -> object:
    """Load a pickle with :class:`RestrictedUnpickler`; anything else is a DataError.

    Args:
        path: the pickle file.
        what: what the file should be, for the error message (e.g. ``"CIFAR batch"``).
    """
    data = path.read_bytes()
    try:
        _check_opcodes(data)
        return RestrictedUnpickler(data).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{path} is not a plain {what}: {exc}",
                        "only load CIFAR files from a trusted download") from None
    except (EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            RecursionError) as exc:
        raise DataError(f"{path} is not a readable {what} ({type(exc).__name__}: {exc})",
                        "the file is corrupt or truncated; download it again") from None
