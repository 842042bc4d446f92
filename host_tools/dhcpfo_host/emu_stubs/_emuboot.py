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

_flash = os.getenv("EMUBOARD_FLASH")
os.umount("/")
os.mount(os.VfsPosix(_flash), "/")
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
del _flash, _emu_run
