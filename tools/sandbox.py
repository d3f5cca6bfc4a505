#!/usr/bin/env python3
"""Runs a command under the sandbox of systemd/edged.service without systemd: the unit's
system-call filter (built from `systemd-analyze syscall-filter` of this machine, loaded with
libseccomp) and, with --proc-subset-pid, /proc reduced to processes as ProcSubset=pid does.
The tests use it to prove the daemon lives under the unit's filter; tools/bench_sandbox.py
to measure what the sandbox costs.

    python3 tools/sandbox.py [--proc-subset-pid] [--errno EPERM|kill] -- COMMAND ...
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import errno
import os
import re
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "edged.service"
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000


def scmp_act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


def unit_filter(unit: Path = UNIT) -> tuple[list[str], list[str], str | None]:
    """The unit's allowed groups, denied groups and SystemCallErrorNumber (None: kill)."""
    allowed: list[str] = []
    denied: list[str] = []
    error = None
    for line in unit.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("SystemCallFilter="):
            value = line.split("=", 1)[1]
            target = denied if value.startswith("~") else allowed
            target.extend(value.lstrip("~").split())
        elif line.startswith("SystemCallErrorNumber="):
            error = line.split("=", 1)[1]
    return allowed, denied, error


def expand(names: list[str]) -> set[str]:
    """System calls of groups and names, as this machine's systemd defines the groups."""
    calls: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            calls.add(name)
            continue
        listing = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                                 check=True).stdout
        members = [line.strip() for line in listing.splitlines()[1:]
                   if line.strip() and not line.strip().startswith("#")]
        calls |= expand(members)
    return calls


def load_filter(allowed: set[str], default_action: int) -> None:
    """Installs the filter on this process (and so on what it executes): only `allowed` calls."""
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    context = lib.seccomp_init(default_action)
    if not context:
        raise OSError("seccomp_init failed")
    for name in sorted(allowed):
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:  # not a call on this architecture
            continue
        rc = lib.seccomp_rule_add(context, SCMP_ACT_ALLOW, number, 0)
        if rc < 0 and -rc != errno.EEXIST:
            raise OSError(-rc, f"seccomp_rule_add({name})")
    rc = lib.seccomp_load(context)
    if rc < 0:
        raise OSError(-rc, "seccomp_load")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--proc-subset-pid", action="store_true", help="/proc as ProcSubset=pid leaves it (root)")
    parser.add_argument("--errno", help="override the unit's SystemCallErrorNumber (a name such as EPERM, or kill)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    if args.proc_subset_pid and not os.environ.get("EDGED_SANDBOX_PROC"):
        # A private mount namespace with its own /proc, then this script again inside it.
        script = "mount -t proc -o subset=pid,hidepid=invisible proc /proc && exec \"$@\""
        os.environ["EDGED_SANDBOX_PROC"] = "1"
        os.execvp("unshare", ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                              sys.executable, *sys.argv])
    allowed_groups, denied_groups, error = unit_filter()
    error = args.errno or error
    allowed = expand(allowed_groups) - expand(denied_groups)
    if error is None or error == "kill":
        action = SCMP_ACT_KILL_PROCESS
    elif re.fullmatch(r"E[A-Z0-9]+", error):
        action = scmp_act_errno(getattr(errno, error))
    else:
        parser.error(f"SystemCallErrorNumber={error}: expected an errno name or kill")
    load_filter(allowed, action)
    os.execvp(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main())
