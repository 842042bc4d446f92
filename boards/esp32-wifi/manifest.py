# Frozen-firmware manifest for esp32-wifi (docs/reference/manifest.rst).
#
# Only for a custom MicroPython build that freezes dhcpfo into flash, which
# keeps bytecode and constants out of the heap:
#   make -C ports/esp32 BOARD=ESP32_GENERIC \
#        FROZEN_MANIFEST=$PWD/boards/esp32-wifi/manifest.py
# `dhcpfo build` does not use it: it compiles .mpy files for the filesystem.
# Relative paths resolve against this file's folder.

include("$(PORT_DIR)/boards/manifest.py")
package("dhcpfo", base_path="../../firmware")
package("runtime", base_path="../../firmware")
module("main.py", base_path="../../firmware")
