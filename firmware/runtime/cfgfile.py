# runtime/cfgfile.py - the node's configuration file, rewritten atomically
# when a live change (Outbox.config) is committed.
#
# The new document goes to `<path>.new`, is flushed and synced, then renamed
# over `<path>`: a crash leaves either the old file or the new one whole,
# never a mix (os.rename replaces the target on POSIX and on littlefs; on
# FAT MicroPython removes the target and renames). A leftover `.new` is
# never read. On CPython the directory is synced too, so the rename itself
# survives a power cut. A rename that reports success but leaves the
# temporary file behind is a failure too: MicroPython's VfsPosix (the unix
# port, emulated boards) renames nothing when both paths are absolute inside
# a mount at "/" (both resolve into one shared buffer), so a board names its
# file relative to its working directory "/".

import os

from dhcpfo.compat import json_dumps
from runtime.store import OS_FS


class ConfigFile:
    """Where the driver writes a changed configuration document."""

    def __init__(self, path, fs=None):
        self.path = path
        self.fs = fs if fs is not None else OS_FS
        self.writes = 0

    def write(self, doc):
        """Replace the file with `doc` (compiled form, compact JSON); raises
        OSError (or MemoryError) if it is not durably in place."""
        tmp = self.path + ".new"
        f = self.fs.open(tmp, "w")
        try:
            f.write(json_dumps(doc))
            self.fs.sync(f)
        finally:
            f.close()
        _keep_mode(self.path, tmp)
        self.fs.rename(tmp, self.path)
        if self.fs.size(tmp) >= 0:
            raise OSError("rename of %s over %s did not take place" % (tmp, self.path))
        _sync_dir(self.path)
        self.writes += 1


def _keep_mode(path, tmp):
    """The new file gets the old one's permissions (it holds the management
    token and shared secrets: a 0600 file must not come back 0644). CPython
    only: MicroPython's filesystems have no permissions."""
    if not hasattr(os, "chmod"):
        return
    try:
        mode = os.stat(path)[0] & 0o7777
    except OSError:
        return  # no old file: the process's umask decides
    os.chmod(tmp, mode)


def _sync_dir(path):
    """fsync the directory holding `path` where the port can (CPython on POSIX)."""
    if not (hasattr(os, "open") and hasattr(os, "O_RDONLY") and hasattr(os, "fsync")):
        return  # MicroPython: the filesystem commits the rename itself
    i = path.rfind("/")
    d = path[:i] if i > 0 else ("/" if i == 0 else ".")
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
