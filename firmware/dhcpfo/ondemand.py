# ondemand.py - code a board loads when it is used and drops again after.
#
# A module imported from a .mpy file lives on the heap (bytecode, constants,
# functions, classes) for as long as sys.modules holds it. Code the board
# runs rarely (the configuration loader at boot, management commands, live
# reconfiguration) need not: it runs inside ondemand.call(), and each module
# that declares itself droppable and was first imported during that call is
# removed from sys.modules and from its package afterwards, so the collector
# frees it. A later call imports it again (from flash: milliseconds).
#
# A module opts in with one line at its top:
#
#     ondemand.droppable(__name__)
#
# Only a module whose objects do not outlive the call may opt in (a class
# whose instances the node keeps would be loaded twice). Names it interned
# stay (MicroPython never frees a qstr); frozen modules cost no heap, and
# dropping one only drops its globals. The same code runs on CPython, where
# imported outside a call (the host's drivers, tests) a module is never
# dropped.

import sys

_depth = 0  # nesting of ondemand.call
_loaded = []  # droppable modules first imported during the current call


def droppable(name):
    """Called by a module as it is imported: drop it when the call ends."""
    if _depth:
        _loaded.append(name)


def enter():
    """Start an on-demand stretch (call() is enter, fn, leave)."""
    global _depth
    _depth += 1


def leave():
    """End it: the outermost leave drops what the stretch imported."""
    global _depth
    _depth -= 1
    if not _depth:
        while _loaded:
            drop(_loaded.pop())


def call(fn, *args):
    """fn(*args), then drop the droppable modules the call imported."""
    enter()
    try:
        return fn(*args)
    finally:
        leave()


def drop(name):
    """Forget module `name`: sys.modules and its package's attribute."""
    sys.modules.pop(name, None)
    i = name.rfind(".")
    if i > 0:
        pkg = sys.modules.get(name[:i])
        leaf = name[i + 1:]
        if pkg is not None and hasattr(pkg, leaf):
            delattr(pkg, leaf)
