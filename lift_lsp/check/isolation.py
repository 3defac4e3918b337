"""The operating system's sandbox around every worker process: bubblewrap, and a seccomp filter built here.

Each worker (examples, contracts, generated candidates, HumanEval checks) starts as `bwrap OPTIONS -- ARGV`:

- new user, PID, IPC, UTS, network and cgroup namespaces: the worker sees only its own processes (no /proc of any
  other process, the server's included), reaches no network (it has a loopback of its own and nothing else), and every
  process it leaves behind dies with it: its PID namespace ends when the worker exits or its init is killed;
- a root of its own: /usr, a few files of /etc, the interpreter's installation and virtual environment, the project and
  the worker script, all read-only; /proc and /dev of its own (/dev read-only); one private tmpfs of `tmpfs_mb` MiB at
  /sandbox (the working directory, HOME and TMPDIR) as the only writable place, all files written counted together;
- no capabilities, a new session (no terminal to push input into), killed by the kernel when the thread that started
  it ends (`--die-with-parent`: a worker must be started and killed by the same thread);
- a seccomp filter (classic BPF, `seccomp_program`) that refuses, with EPERM, what examples never need: new processes
  (`clone` without CLONE_THREAD, `fork`, `vfork`; `clone3` answers ENOSYS so that threads fall back to `clone`),
  tracing or reading other processes, pidfds, mounts and namespaces, keyrings, BPF, perf events, userfaultfd,
  io_uring, kernel modules, clocks, host names, `memfd_create` (memory no limit counts) and AF_UNIX sockets (a socket
  file in the project could reach a service outside). A system call of another ABI (32-bit calls on x86-64, x32)
  kills the process.

Resource limits (address space, CPU time, file size) are set by the worker itself before any user code runs
(`worker.apply_limits`), and its audit hook turns the refusals it can see into clear messages.

Where no such sandbox can be made, examples do not run, and one message says why and how to enable it:
`sandbox_problem` before anything starts (another OS or architecture, bwrap missing), `setup_error` from bubblewrap's
own error when the first worker starts (user namespaces disabled, say). Only the setting `sandbox.mode` =
`unsafe-process` runs them in a plain process, guarded by the audit hook alone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import select
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO, Literal

Mode = Literal["bubblewrap", "unsafe-process"]
WORK_DIR = "/sandbox"
"""Inside the sandbox: the private tmpfs, the working directory, HOME and TMPDIR (not /tmp, where projects may lie)."""
SETUP_ERROR_PREFIX = "bwrap: "
"""How bubblewrap's own errors start (written to the worker's log when it cannot build the sandbox)."""

ENABLE_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install bubblewrap`), or set "
    "`sandbox.mode` to `unsafe-process` knowingly (`lift-lsp check --sandbox unsafe-process`): examples then run in a "
    "plain process that determined code can escape"
)
_ETC_FILES = ("ld.so.cache", "localtime", "passwd", "group", "nsswitch.conf", "hosts")
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_MIB = 1024 * 1024
_INIT_INFO_TIMEOUT_S = 10.0
_TEARDOWN_TIMEOUT_S = 5.0


class SandboxUnavailable(OSError):
    """No OS sandbox can be made here; the message says why and how to enable it."""


# ------------------------------------------------------------------------------------------------------------ seccomp

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_COLUMN = {"x86_64": 0, "aarch64": 1}
_X32_SYSCALL_BIT = 0x40000000
_REFUSED_CALLS: dict[str, tuple[int | None, int | None]] = {  # name: (x86_64, aarch64) numbers
    "fork": (57, None),
    "vfork": (58, None),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424),
    "pidfd_getfd": (438, 438),
    "mount": (165, 40),
    "umount2": (166, 39),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "unshare": (272, 97),
    "setns": (308, 268),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "mount_setattr": (442, 442),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "fanotify_init": (300, 262),
    "memfd_create": (319, 279),
    "memfd_secret": (447, 447),
    "kexec_load": (246, 104),
    "kexec_file_load": (320, 294),
    "init_module": (175, 105),
    "finit_module": (313, 273),
    "delete_module": (176, 106),
    "reboot": (169, 142),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "acct": (163, 89),
    "quotactl": (179, 60),
    "quotactl_fd": (443, 443),
    "syslog": (103, 116),
    "lookup_dcookie": (212, 18),
    "settimeofday": (164, 170),
    "clock_settime": (227, 112),
    "clock_adjtime": (305, 266),
    "adjtimex": (159, 171),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "vhangup": (153, 58),
    "iopl": (172, None),
    "ioperm": (173, None),
}
_CLONE = (56, 220)
_CLONE3 = (435, 435)
_SOCKET = (41, 198)
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (the low half of args[0] on little-endian machines)

_Instruction = tuple[int, str | None, str | None, int]
"""(code, label jumped to when true, label when false, k); None: the next instruction."""


def seccomp_supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) in _AUDIT_ARCH


def seccomp_program(machine: str | None = None) -> bytes:
    """The filter as `struct sock_filter` records, as `bwrap --seccomp FD` reads it."""
    machine = machine or platform.machine()
    column = _COLUMN[machine]
    refused = sorted({n for numbers in _REFUSED_CALLS.values() if (n := numbers[column]) is not None})
    program: list[_Instruction | str] = [
        (_BPF_LD_W_ABS, None, None, _ARCH),
        (_BPF_JEQ_K, None, "kill", _AUDIT_ARCH[machine]),
        (_BPF_LD_W_ABS, None, None, _NR),
    ]
    if machine == "x86_64":
        program.append((_BPF_JGE_K, "deny", None, _X32_SYSCALL_BIT))
    program += [(_BPF_JEQ_K, "deny", None, number) for number in refused]
    program += [
        (_BPF_JEQ_K, "clone", None, _CLONE[column]),
        (_BPF_JEQ_K, "nosys", None, _CLONE3[column]),
        (_BPF_JEQ_K, "socket", None, _SOCKET[column]),
        (_BPF_RET_K, None, None, _RET_ALLOW),
        "clone",
        (_BPF_LD_W_ABS, None, None, _ARG0),
        (_BPF_JSET_K, "allow", "deny", _CLONE_THREAD),
        "socket",
        (_BPF_LD_W_ABS, None, None, _ARG0),
        (_BPF_JEQ_K, "deny", "allow", _AF_UNIX),
        "allow",
        (_BPF_RET_K, None, None, _RET_ALLOW),
        "deny",
        (_BPF_RET_K, None, None, _RET_ERRNO | errno.EPERM),
        "nosys",
        (_BPF_RET_K, None, None, _RET_ERRNO | errno.ENOSYS),
        "kill",
        (_BPF_RET_K, None, None, _RET_KILL_PROCESS),
    ]
    return _assemble(program)


def _assemble(program: Sequence[_Instruction | str]) -> bytes:
    """BPF records from instructions and labels (a string marks the position of the next instruction)."""
    labels: dict[str, int] = {}
    instructions: list[_Instruction] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(instructions)
        else:
            instructions.append(item)
    out = bytearray()
    for index, (code, if_true, if_false, k) in enumerate(instructions):
        jt, jf = (0 if label is None else labels[label] - index - 1 for label in (if_true, if_false))
        assert 0 <= jt <= 255 and 0 <= jf <= 255, "a BPF jump reaches at most 255 instructions"
        out += struct.pack("=HBBI", code, jt, jf, k)
    return bytes(out)


def _program_fd() -> int:
    """A pipe's read end holding the seccomp program (far below a pipe's capacity: the write cannot block)."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, seccomp_program())
    finally:
        os.close(write_end)
    return read_end


# ------------------------------------------------------------------------------------------------------------ mounts


def interpreter_dirs(interpreter: str) -> list[str]:
    """The folders an interpreter needs, found from its path, never by running it (it may be the project's own): the
    folder of each link on the way to the real executable, the installation that executable belongs to (`bin/..`),
    and for a virtual environment the environment and the installation its `pyvenv.cfg` names."""
    dirs: list[str] = []
    path = os.path.abspath(interpreter)
    for _ in range(40):  # a chain of links, as /usr/bin/python3 -> /etc/alternatives/... -> python3.11
        folder = os.path.dirname(path)
        dirs.append(folder)
        env = os.path.dirname(folder)
        config = os.path.join(env, "pyvenv.cfg")
        if os.path.isfile(config):
            dirs.append(env)
            home = _pyvenv_home(config)
            if home:
                dirs.append(os.path.dirname(os.path.abspath(home)))
        if not os.path.islink(path):
            break
        path = os.path.normpath(os.path.join(folder, os.readlink(path)))
    dirs.append(os.path.dirname(os.path.dirname(path)))
    if _same_file(interpreter, sys.executable):  # ours: its site folders are known exactly
        import site

        dirs += [sys.prefix, sys.base_prefix, *site.getsitepackages()]
    return dirs


def _pyvenv_home(config: str) -> str | None:
    with contextlib.suppress(OSError, UnicodeDecodeError), open(config, encoding="utf-8") as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep and key.strip() == "home":
                return value.strip()
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def readable_paths(paths: Iterable[str]) -> list[str]:
    """The folders (or files) to mount read-only: existing, absolute, none inside another or inside /usr; never `/`
    (it would hide the sandbox's own /sandbox, /proc and /dev) nor the sandbox's folder."""
    chosen: list[str] = []
    for path in sorted({os.path.abspath(p) for p in paths if p}):
        if not os.path.exists(path) or path in ("/", WORK_DIR):
            continue
        if any(path == c or path.startswith(c.rstrip("/") + "/") for c in ["/usr", *chosen]):
            continue
        chosen.append(path)
    return chosen


def bwrap_options(readable: Iterable[str], tmpfs_mb: int) -> list[str]:
    """bubblewrap's options for a worker that reads `readable` (see `readable_paths`)."""
    options = [
        *("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net"),
        *("--unshare-cgroup-try", "--die-with-parent", "--new-session", "--cap-drop", "ALL"),
        *("--ro-bind", "/usr", "/usr"),
    ]
    for name in _TOP_LEVEL:
        host = f"/{name}"
        if os.path.islink(host):
            options += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            options += ["--ro-bind", host, host]
    for name in _ETC_FILES:
        options += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    options += ["--proc", "/proc", "--dev", "/dev", "--size", str(tmpfs_mb * _MIB), "--tmpfs", WORK_DIR]
    for path in readable_paths(readable):
        options += ["--ro-bind", path, path]
    return [*options, "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", WORK_DIR]


# ------------------------------------------------------------------------------------------------------------ checks


def sandbox_problem(mode: Mode) -> str | None:
    """None when workers can start in `mode` as far as can be known without starting one (the OS, the architecture,
    bwrap on PATH); else why not, and how to enable the sandbox. What only starting tells (user namespaces disabled,
    say) comes from bubblewrap itself when the first worker starts: see `setup_error`."""
    if mode == "unsafe-process":
        return None
    if not sys.platform.startswith("linux"):
        return f"the OS sandbox (bubblewrap) needs Linux, not {sys.platform}; {ENABLE_HINT}"
    if not seccomp_supported():
        return f"the sandbox's seccomp filter knows no system calls of {platform.machine()}; {ENABLE_HINT}"
    if shutil.which("bwrap") is None:
        return f"bubblewrap (`bwrap`) is not installed or not on PATH; {ENABLE_HINT}"
    return None


def setup_error(log_text: str) -> str | None:
    """Why bubblewrap could not build the sandbox, from its error at the start of the worker's log (None: it did)."""
    first = log_text.lstrip().partition("\n")[0]
    if not first.startswith(SETUP_ERROR_PREFIX):
        return None
    advice = f"where user namespaces are disabled, enable them, or {ENABLE_HINT}"
    return f"bubblewrap could not make the sandbox ({first}); {advice}"


# ------------------------------------------------------------------------------------------------------------ start


@dataclass
class WorkerProcess:
    """A started worker process; `kill` ends it and, in the OS sandbox, every process it started."""

    popen: subprocess.Popen[bytes]
    init_fd: int | None
    """A pidfd of the sandbox's init (PID 1 of its namespace), whose death ends the namespace; None: no sandbox."""
    sandboxed: bool

    def returncode(self) -> int | None:
        """The worker's exit status, negative for a signal (bubblewrap reports 128 + the signal)."""
        code = self.popen.returncode
        if self.sandboxed and code is not None and code > 128:
            return -(code - 128)
        return code

    def wait(self, timeout: float) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=timeout)
        return self.returncode()

    def kill(self) -> None:
        """Kill the worker and everything it started, and wait until they are gone."""
        if self.init_fd is not None:
            init_fd, self.init_fd = self.init_fd, None
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(init_fd, signal.SIGKILL)
                # readable once the init has exited, which it does after every process of its namespace is gone
                _readable(init_fd, _TEARDOWN_TIMEOUT_S)
            os.close(init_fd)
        if self.popen.returncode is None:  # not reaped yet: its pid (the group id) cannot have been reused
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=_TEARDOWN_TIMEOUT_S)


def start(
    argv: Sequence[str],
    *,
    mode: Mode,
    env: dict[str, str],
    output: IO[bytes],
    pass_fds: Sequence[int],
    host_dir: str | None,
    readable: Iterable[str] = (),
    tmpfs_mb: int = 64,
) -> WorkerProcess:
    """Start `argv` (an interpreter and its arguments) with stdin on /dev/null and stdout/stderr on `output`.

    `bubblewrap`: in the OS sandbox (module docstring), reading the interpreter's folders and `readable`; raises
    SandboxUnavailable where bwrap is missing. `unsafe-process`: a plain process in its own session, working in
    `host_dir`."""

    def spawn(command: Sequence[str], fds: Sequence[int], cwd: str | None = None) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,  # no terminal's signals; bubblewrap's own sandbox has a new session too
            pass_fds=fds,
        )

    if mode == "unsafe-process":
        return WorkerProcess(spawn(argv, pass_fds, host_dir), None, sandboxed=False)
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable(f"bubblewrap (`bwrap`) is not installed or not on PATH; {ENABLE_HINT}")
    options = bwrap_options([*interpreter_dirs(argv[0]), *readable], tmpfs_mb)
    seccomp_fd = _program_fd()
    info_read, info_write = os.pipe()
    try:
        command = [bwrap, *options, "--seccomp", str(seccomp_fd), "--info-fd", str(info_write), "--", *argv]
        popen = spawn(command, (*pass_fds, seccomp_fd, info_write))
    except BaseException:
        os.close(info_read)
        raise
    finally:
        os.close(seccomp_fd)
        os.close(info_write)
    try:
        init_fd = _init_pidfd(info_read, popen)
    finally:
        os.close(info_read)
    return WorkerProcess(popen, init_fd, sandboxed=True)


def _init_pidfd(info_fd: int, popen: subprocess.Popen[bytes]) -> int | None:
    """A pidfd of the sandbox's init, from the JSON bubblewrap writes to `--info-fd` right after creating it (and
    before it can have been reaped: it outlives the worker, which has not started yet). None if bwrap failed first."""
    data = b""
    while _readable(info_fd, _INIT_INFO_TIMEOUT_S):
        chunk = os.read(info_fd, 4096)
        if not chunk:
            break
        data += chunk
    try:
        pid = json.loads(data)["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or popen.poll() is not None:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _readable(fd: int, timeout_s: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_s * 1000))
