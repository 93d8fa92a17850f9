"""The operating system's fence around a local pod worker: a Linux Landlock ruleset.

A pod runs its user's code (Python factories and behaviours import whatever they name), so
what that code can *read* must be decided by the kernel, not by Canopy. A local pod is a
process of the server's own OS user, who may read every tenant's ``events.db``, the admin
token in ``server.json`` and the other pods' folders; the ruleset applied here, before any of
the user's code is imported, leaves the worker able to read only:

- the Python installation and the import path it started with (standard library,
  site-packages, Canopy itself), and the workspace roots it was given;
- the system libraries and a short list of files under ``/etc`` that Python, the dynamic linker,
  name resolution and TLS need (not ``/etc`` as a whole: it holds ``shadow`` and host keys);
- its own process in ``/proc``, a few devices (``/dev/null``, ``/dev/urandom`` ...);

and to write only in its own working directory. Paths it was told to hide (the server's data
directory, the other pods' folders) stay out even when they sit inside a readable tree: such a
tree is allowed piece by piece, around them. Landlock can only allow, so "everything in the
workspace except ``.canopy``" is the list of the workspace's other entries, taken when the
worker starts; the split tree itself stays listable (Landlock grants listing a folder with
everything beneath it), so the *names* in a hidden folder inside it can be listed, never
their contents.

Landlock (Linux 5.13+) needs no privilege; every access right the running kernel knows is
handled, the newer ones only where its ABI has them. From ABI 6 on, the worker is also scoped:
it cannot signal processes outside its sandbox (the server) nor reach their abstract UNIX
sockets. The calls are three system calls made through ``ctypes`` (numbers 444-446 are the same
on every architecture Linux assigns new calls to); see ``landlock(7)``.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from .provider import PodError

__all__ = [
    "DENY_VARIABLE",
    "MODE_VARIABLE",
    "READ_VARIABLE",
    "SANDBOX_MODES",
    "SandboxError",
    "SandboxPolicy",
    "apply_policy",
    "landlock_abi",
    "sandbox_worker",
    "split_layout",
    "worker_policy",
]

log = logging.getLogger(__name__)

SANDBOX_MODES: Final = ("auto", "landlock", "none")
"""``landlock``: a pod that cannot be sandboxed does not start; ``auto``: sandboxed when the
kernel can, with a warning when it cannot; ``none``: never (pods read what the server reads)."""
MODE_VARIABLE: Final = "CANOPY_POD_SANDBOX"
READ_VARIABLE: Final = "CANOPY_POD_SANDBOX_READ"
"""Extra trees the pod may read (the workspace roots), separated by ``os.pathsep``."""
DENY_VARIABLE: Final = "CANOPY_POD_SANDBOX_DENY"
"""Paths the pod must not read even inside a readable tree, separated by ``os.pathsep``."""

_CREATE_RULESET: Final = 444
_ADD_RULE: Final = 445
_RESTRICT_SELF: Final = 446
_CREATE_RULESET_VERSION: Final = 1
_RULE_PATH_BENEATH: Final = 1
_PR_SET_NO_NEW_PRIVS: Final = 38

# Filesystem access rights (linux/landlock.h), and the ABI that introduced the later ones.
EXECUTE: Final = 1 << 0
WRITE_FILE: Final = 1 << 1
READ_FILE: Final = 1 << 2
READ_DIR: Final = 1 << 3
_WRITE_TREE: Final = sum(1 << bit for bit in range(4, 13))  # remove, make dir/file/sock/...
REFER: Final = 1 << 13  # ABI 2
TRUNCATE: Final = 1 << 14  # ABI 3
IOCTL_DEV: Final = 1 << 15  # ABI 5
_FILE_RIGHTS: Final = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
"""The rights a rule on a file (not a directory) may carry; the others are EINVAL there."""
_SCOPE_ABSTRACT_UNIX_SOCKET: Final = 1 << 0  # ABI 6
_SCOPE_SIGNAL: Final = 1 << 1  # ABI 6

READ: Final = READ_FILE | READ_DIR | EXECUTE
WRITE: Final = READ | WRITE_FILE | _WRITE_TREE | REFER | TRUNCATE
DEVICE: Final = READ_FILE | WRITE_FILE | IOCTL_DEV

SYSTEM_TREES: Final = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
"""Shared libraries and programs (on a merged-/usr system the others are links into /usr)."""
ETC_ENTRIES: Final = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "ssl",
    "pki",
    "ca-certificates",
    "ca-certificates.conf",
    "resolv.conf",
    "hosts",
    "host.conf",
    "nsswitch.conf",
    "gai.conf",
    "passwd",
    "group",
    "protocols",
    "services",
    "mime.types",
    "os-release",
    "alternatives",
)
"""What of ``/etc`` a pod may read: the linker's cache, time zone, name resolution, CA
certificates, user names (``getpass``, ``~`` expansion) and MIME types; never ``shadow``, host
keys or other services' configuration."""
PROC_ENTRIES: Final = ("/proc/self", "/proc/cpuinfo", "/proc/meminfo")
"""``/proc/self`` is resolved to the worker's own pid: other processes (the server's
``environ`` and ``cmdline``) stay out."""
SYS_TREES: Final = ("/sys/devices/system/cpu",)
DEVICES: Final = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/full")


class SandboxError(PodError):
    """The pod worker cannot be sandboxed as its settings require."""


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """What one worker may touch: ``rules`` maps a path to the access rights granted beneath
    it; anything else is denied."""

    rules: Mapping[Path, int] = field(default_factory=dict)


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when it has none (not Linux, built
    without Landlock, or Landlock not among the enabled security modules)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    version = libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def worker_policy(
    workdir: Path, readable: Iterable[Path] = (), hidden: Iterable[Path] = ()
) -> SandboxPolicy:
    """The policy of a worker running in ``workdir``: the Python it runs on and its import
    path, the system files above, ``readable`` (the workspace roots) — all less ``hidden`` —
    and ``workdir`` to write in."""
    deny = {_real(path) for path in hidden}
    rules: dict[Path, int] = {}
    trees = [*_python_trees(), *readable, *map(Path, (*SYSTEM_TREES, *SYS_TREES))]
    trees += [Path("/etc", name) for name in ETC_ENTRIES]
    for tree in trees:
        real = _real(tree)
        parts = _around(real, deny)
        for part in parts:
            rules[part] = rules.get(part, 0) | READ
        if parts != [real] and not _hidden(real, deny):
            # Split around a hidden path: still listable (names only, beneath too), or the
            # import system, which lists each folder of the import path, finds nothing in it.
            rules[real] = rules.get(real, 0) | READ_DIR
    for name in PROC_ENTRIES:
        rules[_real(Path(name))] = READ_FILE | READ_DIR
    for device in DEVICES:
        rules[Path(device)] = DEVICE
    rules[_real(workdir)] = WRITE | IOCTL_DEV
    return SandboxPolicy({path: rights for path, rights in rules.items() if path.exists()})


def _python_trees() -> Iterator[Path]:
    """Where the worker's Python and its modules live: the prefixes, every import path entry
    (the standard library, site-packages, the workspace) and Canopy's own packages (an
    editable install maps them from outside site-packages)."""
    yield from (Path(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    yield from (Path(entry) for entry in sys.path if entry and os.path.isabs(entry))
    for name, module in list(sys.modules.items()):
        if name.startswith("canopy.") and name.count(".") == 1:
            yield from (Path(entry) for entry in getattr(module, "__path__", ()))


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def split_layout(readable: Iterable[Path], hidden: Iterable[Path]) -> tuple[object, ...]:
    """The entries of every readable folder that a worker's policy allows entry by entry (one
    holding a hidden path), as a value to compare: a worker sandboxed before it changed cannot
    read a new entry there, so a spare made then is stale."""
    deny = {_real(path) for path in hidden}
    folders: set[Path] = set()
    for root in map(_real, readable):
        for path in deny:
            if path != root and path.is_relative_to(root) and not _hidden(root, deny):
                folders.update(
                    f for f in path.parents if f.is_relative_to(root) and not _hidden(f, deny)
                )
    layout: list[object] = []
    for folder in sorted(folders):
        try:
            layout.append((folder, sorted(os.listdir(folder))))
        except OSError:
            layout.append((folder, None))
    return tuple(layout)


def _hidden(path: Path, deny: set[Path]) -> bool:
    return any(path.is_relative_to(hidden) for hidden in deny)


def _around(tree: Path, deny: set[Path]) -> list[Path]:
    """The parts of ``tree`` that hold no denied path: ``tree`` itself when none is inside it,
    nothing when it is inside one, else the same for each entry of it. Links are left out of a
    split tree: a rule follows a link to its target, which may lie anywhere."""
    if _hidden(tree, deny):
        return []
    inside = {hidden for hidden in deny if hidden.is_relative_to(tree)}
    if not inside:
        return [tree]
    try:
        entries = sorted(tree.iterdir())
    except OSError:
        return []
    return [part for entry in entries if not entry.is_symlink() for part in _around(entry, inside)]


def apply_policy(policy: SandboxPolicy) -> int:
    """Restrict this process (and every process it starts) to ``policy``, for good; the ABI
    version used. ``SandboxError`` when the kernel has no Landlock or refuses a rule."""
    abi = landlock_abi()
    if abi < 1:
        raise SandboxError("this kernel does not offer Landlock (Linux 5.13 or later, enabled)")
    libc = ctypes.CDLL(None, use_errno=True)
    handled = READ | WRITE_FILE | _WRITE_TREE
    handled |= (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0)
    handled |= IOCTL_DEV if abi >= 5 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    attributes = (ctypes.c_uint64 * 3)(handled, 0, scoped)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attributes), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise SandboxError(f"cannot create a Landlock ruleset: {_errno()}")
    try:
        for path, rights in policy.rules.items():
            _add_rule(libc, ruleset, path, rights & handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise SandboxError(f"cannot set no_new_privs: {_errno()}")
        if libc.syscall(_RESTRICT_SELF, ruleset, 0) != 0:
            raise SandboxError(f"cannot enforce the Landlock ruleset: {_errno()}")
    finally:
        os.close(ruleset)
    return abi


class _PathBeneath(ctypes.Structure):
    """``struct landlock_path_beneath_attr``, packed as the kernel declares it."""

    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: Path, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # gone since the policy was made: nothing to allow
    try:
        if not path.is_dir():
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(rights, fd)
        if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise SandboxError(f"cannot allow {path} in the Landlock ruleset: {_errno()}")
    finally:
        os.close(fd)


def _errno() -> str:
    number = ctypes.get_errno()
    return f"{errno.errorcode.get(number, number)} ({os.strerror(number)})"


def _paths(raw: str) -> list[Path]:
    return [Path(part) for part in raw.split(os.pathsep) if part]


def sandbox_worker(environ: Mapping[str, str]) -> None:
    """Sandbox this worker as its provider asked (``CANOPY_POD_SANDBOX*`` variables): called at
    start-up, before any user code is imported. Without the variables (a Kubernetes pod, which
    the cluster isolates) nothing happens. ``SandboxError`` when ``landlock`` is required and
    cannot be had; under ``auto`` that is a warning."""
    mode = environ.get(MODE_VARIABLE, "none")
    if mode == "none":
        return
    if mode not in SANDBOX_MODES:
        raise SandboxError(f"{MODE_VARIABLE} must be one of {', '.join(SANDBOX_MODES)}")
    policy = worker_policy(
        Path.cwd(), _paths(environ.get(READ_VARIABLE, "")), _paths(environ.get(DENY_VARIABLE, ""))
    )
    try:
        abi = apply_policy(policy)
    except SandboxError as error:
        if mode == "landlock":
            raise
        log.warning("pod worker runs without a sandbox: %s", error)
        return
    log.info(
        "pod worker sandboxed",
        extra={"fields": {"landlock_abi": abi, "rules": len(policy.rules)}},
    )
