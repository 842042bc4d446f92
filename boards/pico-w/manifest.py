# Frozen-firmware manifest for pico-w (docs/reference/manifest.rst).
#
# Only for a custom MicroPython build that freezes dhcpfo into flash, which
# keeps bytecode and constants out of the heap:
#   make -C ports/rp2 BOARD=RPI_PICO_W \
#        FROZEN_MANIFEST=$PWD/boards/pico-w/manifest.py
# `dhcpfo build` does not use it: it compiles .mpy files for the filesystem.
# Relative paths resolve against this file's folder.

include("$(BOARD_DIR)/manifest.py")
package("dhcpfo", base_path="../../firmware")
package("runtime", base_path="../../firmware")
module("main.py", base_path="../../firmware")
