# _emuboot.py - runs first inside an emulated board's micropython process.
#
# Makes the board's flash directory the filesystem root (a VfsPosix mount,
# so "/config.json" and "/data" mean the flash, as on a board), sets the
# board's sys.path, then runs boot.py and (unless the soft reset came from
# the raw REPL) main.py, as a board's firmware does. The micropython process
# was started with -i, so the REPL follows.
import os
import sys

import machine  # noqa: F401 - the stand-ins open their control files now,
import network  # noqa: F401   while the host filesystem is still mounted
import rp2  # noqa: F401 - BOOTSEL, the RP2040 profiles' safe-mode input



class _Flash:
    """VfsPosix rooted at the flash directory, with a working rename: the
    unix port's VfsPosix builds both of rename's paths in one buffer when it
    has a root, so the old name is overwritten by the new one and every
    rename between absolute paths fails with ENOENT (seen on 1.28; a board's
    littlefs has no such problem, and `dhcpfo flash` switches firmware by
    renaming). Relative paths skip that buffer, so rename goes through them
    from the root."""

    def __init__(self, root):
        self.v = os.VfsPosix(root)

    def mount(self, readonly, mkfs):
        return self.v.mount(readonly, mkfs)

    def umount(self):
        return self.v.umount()

    def open(self, path, mode):
        return self.v.open(path, mode)

    def ilistdir(self, path):
        return self.v.ilistdir(path)

    def stat(self, path):
        return self.v.stat(path)

    def statvfs(self, path):
        return self.v.statvfs(path)

    def mkdir(self, path):
        return self.v.mkdir(path)

    def rmdir(self, path):
        return self.v.rmdir(path)

    def remove(self, path):
        return self.v.remove(path)

    def chdir(self, path):
        return self.v.chdir(path)

    def getcwd(self):
        return self.v.getcwd()

    def rename(self, old, new):
        cwd = self.v.getcwd() or "/"

        def from_root(p):
            if not p.startswith("/"):
                p = cwd.rstrip("/") + "/" + p
            return p.lstrip("/")

        old, new = from_root(old), from_root(new)
        self.v.chdir("/")
        try:
            self.v.rename(old, new)
        finally:
            self.v.chdir(cwd)


def _from_board_address():
    """A board's outgoing TCP connections come from its own address (the
    failover partner checks that). Emulated boards on loopback addresses
    (127.x.y.z, `make run`) share lo, where the kernel would pick 127.0.0.1:
    there asyncio.open_connection binds to the board's --ip first (as
    MicroPython's own version, plus the bind). Elsewhere (namespaces, where a
    board may have a second interface for failover) the kernel's choice stands."""
    ip = os.getenv("EMUBOARD_IP") or ""
    if not ip.startswith("127."):
        return
    import asyncio
    import socket

    from asyncio import core

    own = socket.getaddrinfo(ip, 0)[0][-1]

    async def open_connection(host, port, ssl=None, server_hostname=None):
        from errno import EINPROGRESS

        import asyncio.stream as stream

        if ssl:
            raise OSError("emuboard: TLS connections are not emulated")
        ai = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], ai[1], ai[2])
        if str(host).startswith("127."):
            try:
                s.bind(own)
            except OSError:
                pass
        s.setblocking(False)
        try:
            s.connect(ai[-1])
        except OSError as er:
            if er.errno != EINPROGRESS:
                raise er
        yield core._io_queue.queue_write(s)
        ss = stream.Stream(s)
        return ss, ss

    asyncio.open_connection = open_connection


_from_board_address()
_flash = os.getenv("EMUBOARD_FLASH")
os.umount("/")
os.mount(_Flash(_flash), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]


def _emu_run(name):
    try:
        os.stat(name)
    except OSError:
        return
    try:
        with open(name) as f:
            code = f.read()
        exec(code, {"__name__": "__main__", "__file__": name})
    except BaseException as e:  # a board prints the traceback and gives the REPL
        sys.print_exception(e)


_emu_run("boot.py")
if os.getenv("EMUBOARD_RAW") != "1":
    _emu_run("main.py")
del _flash, _emu_run, _Flash, _from_board_address
