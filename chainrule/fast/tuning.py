"""BLAS threads and glibc's malloc thresholds: process-wide tuning for the CPU path.
Replaces nothing in the reference ops (their arithmetic is unchanged); it moved here from
``backend`` so that the backend is only the array namespace, the dtype and the RNG.

* ``set_num_threads``/``get_num_threads`` (re-exported as ``chainrule.set_num_threads``): the
  thread count of the OpenBLAS that NumPy loaded, found through ctypes. On a machine shared with
  other busy processes one thread avoids BLAS threads waiting on each other.
* ``tune_malloc``: applied when chainrule is imported (see there). Process-wide and not undone by
  ``chainrule.fast.set_enabled(False)``; ``CHAINRULE_FAST=0`` or ``CHAINRULE_MALLOC_TUNING=0`` at
  import leaves glibc's defaults.
"""


# -- BLAS threads ----------------------------------------------------------------------------------
_blas = None


def blas_controls():
    """(get, set) functions for the thread count of the OpenBLAS that NumPy loaded, found through
    ctypes; (None, None) where there is none (another BLAS, or no /proc)."""
    global _blas
    if _blas is not None:
        return _blas
    _blas = (None, None)
    try:
        import ctypes
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except (OSError, ImportError):
        return _blas
    for path in sorted((p for p in paths if p.startswith("/")), key=lambda p: "numpy" not in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in (
                ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
                ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                ("openblas_get_num_threads", "openblas_set_num_threads")):
            get, put = getattr(lib, get_name, None), getattr(lib, set_name, None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                _blas = (get, put)
                return _blas
    return _blas


def get_num_threads():
    """Threads NumPy's BLAS uses for matrix products (None when it cannot be told)."""
    get, _ = blas_controls()
    return get() if get is not None else None


def set_num_threads(n):
    """Set the threads of NumPy's BLAS, like ``torch.set_num_threads``. On a machine shared with
    other busy processes, 1 thread avoids BLAS threads waiting on each other (small products can
    otherwise be 100x slower); on an idle machine more threads speed up large products.
    Returns the previous count (None if the BLAS cannot be controlled)."""
    if int(n) < 1:
        raise ValueError(f"set_num_threads: expected a positive thread count, got {n}")
    get, put = blas_controls()
    if put is None:
        return None
    prev = get()
    put(int(n))
    return prev


# -- the allocator ---------------------------------------------------------------------------------
# A training step allocates and frees the same multi-megabyte temporaries every time (im2col
# buffers, activations, their gradients). With glibc's default thresholds those blocks go back to
# the OS when freed and are page-faulted in again on the next step (LeNet-5, batch 64: ~3500
# faults a step, about 3x the step time). The thresholds below keep up to 256 MiB of freed memory
# in the process for reuse.
MALLOC_SETTINGS = {"M_MMAP_THRESHOLD": 256 << 20, "M_TRIM_THRESHOLD": 256 << 20,
                   "M_TOP_PAD": 64 << 20}
_MALLOPT_PARAMS = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2, "M_MMAP_THRESHOLD": -3}
_USER_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_malloc_tuned = False


def tune_malloc():
    """Raise glibc's malloc thresholds (``MALLOC_SETTINGS``) for this process, so that freed
    training-step buffers stay in the heap instead of going back to the OS and page-faulting in
    again. Called when chainrule is imported, unless the environment sets CHAINRULE_MALLOC_TUNING=0
    or CHAINRULE_FAST=0, or the user tuned malloc already (MALLOC_*_ variables or GLIBC_TUNABLES). Does nothing
    outside glibc (macOS, Windows, musl). Returns whether the settings are in effect."""
    global _malloc_tuned
    if _malloc_tuned:
        return True
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version                # glibc only
        mallopt = libc.mallopt
    except (OSError, AttributeError, ImportError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = True
    for name, value in MALLOC_SETTINGS.items():
        param = _MALLOPT_PARAMS[name]
        if not mallopt(param, value):
            # some glibc versions cap the mmap threshold at half the heap size (32 MiB)
            ok = bool(mallopt(param, min(value, 32 << 20))) and ok
    _malloc_tuned = ok
    return ok


def malloc_tuned():
    """Whether ``tune_malloc`` is in effect in this process."""
    return _malloc_tuned


def _tune_malloc_on_import():
    import os
    import sys
    if not sys.platform.startswith("linux"):
        return
    off = ("0", "false", "no", "off")
    if (os.environ.get("CHAINRULE_MALLOC_TUNING", "1").strip().lower() in off
            or os.environ.get("CHAINRULE_FAST", "1").strip().lower() in off):
        return
    if any(k in os.environ for k in _USER_MALLOC_ENV) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    tune_malloc()


_tune_malloc_on_import()
