# lease/status.py - binding-status values (draft-12 §12.3; ISC uses the same
# numbers, interop §6.5). One definition for the lease table, which stores
# them, and the failover codec, which sends them as option 3.

from dhcpfo.compat import const

FREE = const(1)  # available to the primary
ACTIVE = const(2)
EXPIRED = const(3)
RELEASED = const(4)
ABANDONED = const(5)
RESET = const(6)
BACKUP = const(7)  # available to the secondary

NAMES = ("", "free", "active", "expired", "released", "abandoned", "reset", "backup")
