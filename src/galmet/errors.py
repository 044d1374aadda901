"""Exceptions a user can cause; the CLI turns each into one line and exit code 2."""

from __future__ import annotations

import re


class GalmetError(Exception):
    """A problem with the user's input (file, row, column, option) rather than a bug.

    The message is one line that says what is wrong and where (file, objID, column): control
    characters in it (a newline in a file name, a tab in a CSV cell) are written as escapes.

    A library error about a parameter names the parameter as the Python API spells it
    (``batch_size``) and sets ``param`` to that name; the command line rewrites it to the flag
    the user typed (``--batch-size``) with :func:`for_flags`. The library never names a flag.
    """

    def __init__(self, *args: object, param: str | tuple[str, ...] | None = None) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (single_line(args[0]),)
        super().__init__(*args)
        #: The API parameter the message is about (None: not about one parameter; a tuple: about
        #: several, e.g. two that exclude each other).
        self.param = param


class DataError(GalmetError):
    """Bad dataset content: missing or undecodable image, wrong size or mode, bad label."""


class ConfigError(GalmetError):
    """A bad option or configuration value."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def single_line(text: str) -> str:
    """``text`` with every control character (newline, tab, escape, ...) written as a Python
    escape, so a message that quotes a file name or a cell can never span lines."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


#: What may not touch a parameter name that :func:`for_flags` rewrites: a word character, a
#: dash, or a path's ``/``, ``\\`` or ``.`` (``runs/out/x.csv`` and ``out.csv`` keep their ``out``).
_WORDISH = r"[\w./\\-]"


def for_flags(exc: GalmetError, flags: dict[str, str]) -> str:
    """The message of ``exc`` as a command line says it: its parameter name replaced by the flag.

    ``flags`` maps API parameter names to what the user typed (``{"batch_size": "--batch-size"}``);
    the first whole-word occurrence of ``exc.param`` (of each, for a tuple; never part of a path)
    becomes the flag. An error without a parameter, or with one the command has no flag for,
    keeps its message.
    """
    text = str(exc)
    params = (exc.param,) if isinstance(exc.param, str) else exc.param or ()
    for param in params:  # (a tuple of parameters: each one's first occurrence)
        flag = flags.get(param)
        if flag:
            # (a full stop or comma after the name ends a sentence; a dot inside a name is a path)
            text = re.sub(rf"(?<!{_WORDISH}){re.escape(param)}(?![\w/\\-]|\.\w)", flag, text, count=1)
    return text


def one_line(exc: BaseException, limit: int = 200) -> str:
    """``TypeName: first line of the message`` (at most ``limit`` characters of it), for
    wrapping a foreign exception into a one-line galmet error."""
    text = str(exc)
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:limit]}" if first else type(exc).__name__


class ResourceError(GalmetError):
    """The machine ran out of something the command needs: memory (including address space under
    ``ulimit -v``), threads, or GPU memory. The message names which, and what to lower."""


#: Message fragments of failures that mean "out of memory or threads" rather than a bug, lower case:
#: CPython (can't start new thread), torch's allocators, pyarrow's thread pool, the dynamic loader
#: (a shared library that cannot be mapped), and mmap/OSError ENOMEM.
_MEMORY_SIGNS = (
    "can't allocate memory",
    "cannot allocate memory",
    "out of memory",
    "failed to map segment",
    "std::bad_alloc",
    "is killed by signal: killed",  # (a DataLoader worker the kernel's OOM killer ended)
)
_THREAD_SIGNS = ("can't start new thread", "failed to launch worker thread", "unable to create thread")


def out_of_resources(exc: BaseException | None) -> str | None:
    """``"memory"`` or ``"threads"`` when ``exc`` (or an exception it was raised from) says the
    machine ran out of it; None for any other failure.

    Recognises MemoryError, ``RuntimeError: can't start new thread``, an OSError with errno
    ENOMEM (a memory map that cannot be made), torch's ``DefaultCPUAllocator: can't allocate
    memory`` and CUDA out-of-memory errors, pyarrow's ``Failed to launch worker thread`` and a
    shared library the loader cannot map."""
    import errno

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, MemoryError):
            return "memory"
        if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
            return "memory"
        text = str(exc).lower()
        if any(sign in text for sign in _THREAD_SIGNS):
            return "threads"
        if any(sign in text for sign in _MEMORY_SIGNS):
            return "memory"
        exc = exc.__cause__ or exc.__context__
    return None


def address_space_nearly_full(margin: int = 128 << 20) -> bool:
    """True when the process has a soft address-space limit (``ulimit -v``, RLIMIT_AS) and its peak
    virtual size came within ``margin`` bytes of it: any odd failure then (a C extension's
    ``SystemError``, a library whose import half failed) is the limit's doing. Linux only."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit in (resource.RLIM_INFINITY, -1) or limit <= 0:
            return False
        with open("/proc/self/status", encoding="ascii") as fh:
            peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmPeak:"))
    except MemoryError:  # (not even the status file can be read: that says enough)
        return True
    except (ImportError, OSError, ValueError, StopIteration):
        return False
    return peak >= limit - margin


def resource_message(exc: BaseException, what: str) -> str:
    """One line saying that ``what`` ("memory" or "threads") ran out, the failure, and what to lower."""
    hint = (
        "use fewer workers or a smaller batch size, or run where more memory is allowed "
        "(check 'ulimit -v' and the job's memory request)"
        if what == "memory"
        else "use fewer workers (each thread reserves stack address space), or run where more "
        "threads and memory are allowed (check 'ulimit -u' and 'ulimit -v')"
    )
    return single_line(f"out of {what} ({one_line(exc, 160)}); {hint}")


def raise_if_out_of_resources(exc: BaseException) -> None:
    """Raise :class:`ResourceError` (from ``exc``) when ``exc`` means memory or threads ran out;
    for a reader that wraps any other failure as "cannot read FILE" (a full address space is not
    a damaged file)."""
    what = out_of_resources(exc)
    if what is not None:
        raise ResourceError(resource_message(exc, what)) from exc
