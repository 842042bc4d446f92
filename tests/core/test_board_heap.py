"""The board's heap budget, measured on a 32-bit MicroPython.

A node serving a /24 with one failover relationship must fit an ESP32
(~100 KB free). The scenario: import the board's module set, load a compiled
configuration from a file, build node and lease store, serve 254
DISCOVER/REQUEST exchanges from clients with 19-byte client identifiers,
fill the events ring, page through the leases, and resync all 254 bindings
to a partner that lost its storage.

tests/mp/mprun.mjs runs the steps below one top-level call at a time in a
fresh VM (once with .py sources, once with .mpy), collects garbage and
samples gc.mem_alloc() after every step, and fails if the peak live heap
(over the bare VM, partner excluded) exceeds BUDGET. Under pytest (and in
the shared MicroPython test VM) test_board_scenario runs the same steps and
checks what they must achieve.
"""
import gc

BUDGET = 85 * 1024  # bytes of live heap for the board's node (partner excluded)
PER_ADDRESS_GOAL = 32  # bytes of heap per leased address, client ids included
CLIENTS = 254
CFG_DIR = "/tmp/dhcpfo-heap"

_PRIMARY = "198.18.0.2"
_SECONDARY = "198.18.0.3"
A_ADDR = b"\xc6\x12\x00\x02"
B_ADDR = b"\xc6\x12\x00\x03"
S = {}  # the scenario's state between steps (module global: steps are separate calls)


def _human(role):
    me, partner = (_PRIMARY, _SECONDARY) if role == "primary" else (_SECONDARY, _PRIMARY)
    return {
        "server": {"name": "heap-" + role, "server_id": me},
        "scopes": [{"id": "198.18.0.0", "mask": 24, "lease_time": 7200,
                    "ranges": [{"start": "198.18.0.1", "end": "198.18.0.254"}],
                    "options": {"routers": ["198.18.0.1"], "domain-name-servers": [me],
                                "domain-name": "heap.example"}}],
        "failover": [{"name": "heap", "role": role, "mode": "hot-standby",
                      "reserve_percent": 0,
                      "local": {"address": me}, "partner": {"address": partner},
                      "scopes": ["198.18.0.0"], "mclt": 600,
                      "shared_secret": "heap-test-secret"}],
    }


def compiled_texts():
    """The two nodes' compiled configurations (JSON text), made by the host compiler."""
    from dhcpfo_host import boardconf
    return [boardconf.compiled_text(_human("primary")), boardconf.compiled_text(_human("secondary"))]


def write_configs(texts=None):
    import os
    texts = texts or compiled_texts()
    try:
        os.mkdir(CFG_DIR)
    except OSError:
        pass
    for name, text in zip(("a.json", "b.json"), texts):
        with open(CFG_DIR + "/" + name, "w") as f:
            f.write(text)


# ---------------------------------------------------------------------------
# The steps. Each is one top-level call in the measured run.


def step_import():
    """The board's module set (runtime.aio/udp_mp excluded: they need sockets)."""
    import dhcpfo.compat  # noqa: F401
    import dhcpfo.config  # noqa: F401
    import dhcpfo.events  # noqa: F401
    import dhcpfo.lease.log  # noqa: F401
    import dhcpfo.mgmt.commands  # noqa: F401
    import dhcpfo.node  # noqa: F401
    import dhcpfo.failover.peer  # noqa: F401
    import runtime.store  # noqa: F401


def _load(name):
    from dhcpfo import config
    with open(CFG_DIR + "/" + name) as f:
        return config.load_text(f.read())


def step_partner():
    """The partner node (not the board's memory: measured and subtracted)."""
    from dhcpfo.node import Node
    b = Node(_load("b.json"))
    b.start(S["now"])
    _drain_b(b)
    S["b"] = b


def step_config():
    S["cfg"] = _load("a.json")


def _rmtree(d):
    import os
    try:
        for n in os.listdir(d):
            os.remove(d + "/" + n)
    except OSError:
        try:
            os.mkdir(d)
        except OSError:
            pass


def step_build():
    from dhcpfo.mgmt.commands import Commands
    from dhcpfo.node import Node
    from runtime.store import LeaseStore
    d = CFG_DIR + "/data"
    _rmtree(d)
    node = Node(S.pop("cfg"))
    store = LeaseStore(d)
    store.load(node.tables_by_scope(), node.restore_meta)
    node.after_restore()
    node.start(S["now"])
    S["a"] = node
    S["store"] = store
    S["mgmt"] = Commands(node)
    S["wire"] = []  # (to "a"/"b", bytes) in flight
    S["up"] = False
    S["offer"] = None
    _drain_a()


def _drain_a():
    """The board's loop turn: records durable first, then what they allow out."""
    a = S["a"]
    out = a.out
    store = S["store"]
    store.append(out.records)
    store.append(out.lazy)
    store.commit()
    for payload, dst, port, delay in out.dhcp:
        S["reply"] = payload
    if S["up"]:
        for conn, data in out.peer:
            S["wire"].append(("b", data))
    out.clear()


def _drain_b(b):
    out = b.out
    if S.get("up"):
        for conn, data in out.peer:
            S["wire"].append(("a", data))
    out.clear()


def _flow():
    w = S["wire"]
    while w:
        to, data = w.pop(0)
        if to == "a":
            S["a"].peer_data("a", data, S["now"])
            _drain_a()
        else:
            S["b"].peer_data("b", data, S["now"])
            _drain_b(S["b"])


def step_connect():
    S["up"] = True
    a = S["a"]
    b = S["b"]
    a.peer_connected("a", B_ADDR, True, S["now"])
    _drain_a()
    b.peer_connected("b", A_ADDR, False, S["now"])
    _drain_b(b)
    _flow()
    for _ in range(5):
        step_tick()


def step_tick():
    S["now"] += 1
    S["a"].tick(S["now"])
    _drain_a()
    S["b"].tick(S["now"])
    _drain_b(S["b"])
    _flow()


def _client(i, mtype, requested=None):
    from dhcpfo.wire import dhcp as wire
    mac = bytes((2, 0, 0x5E, 0x42, i >> 8, i & 255))
    p = wire.Packet(xid=0x10000 + i, chaddr=mac)
    p.options[wire.OPT_MSG_TYPE] = bytes((mtype,))
    # RFC 4361: type 255, IAID (4), DUID-LLT (14) -> 19 bytes
    p.options[wire.OPT_CLIENT_ID] = b"\xff\x00\x00\x00\x01\x00\x01\x00\x01\x2c\x00\x00\x00" + mac
    if requested is not None:
        p.options[50] = requested
        p.options[wire.OPT_SERVER_ID] = A_ADDR
    return wire.encode(p, 576)


def _exchange(i):
    from dhcpfo.wire import dhcp as wire
    S["reply"] = None
    S["a"].handle_dhcp(_client(i, wire.DISCOVER), A_ADDR, S["now"])
    _drain_a()
    _flow()
    offer = S["reply"]
    if offer is None:
        return False
    S["reply"] = None
    S["a"].handle_dhcp(_client(i, wire.REQUEST, bytes(offer[16:20])), A_ADDR, S["now"])
    _drain_a()
    _flow()
    return S["reply"] is not None and S["reply"][16:20] == offer[16:20]


def step_serve(i):
    """One DISCOVER/OFFER/REQUEST/ACK for client i."""
    if _exchange(i):
        S["acked"] += 1


def step_events():
    """Fill the events ring with lease-like events (the ring must stay bounded)."""
    from dhcpfo import events as ev
    e = S["a"].events
    for i in range(400):
        e.emit(S["now"], ev.INFO, ev.EV_LEASE, "lease 198.18.0.%d to 02:00:5e:42:00:%02x" % (i & 255, i & 255))


def step_mgmt(offset):
    """One page of the leases list, as the management surface serves it."""
    r = S["mgmt"].handle({"cmd": "get-leases", "scope": "198.18.0.0", "offset": offset,
                          "limit": 32}, S["now"])
    S["listed"] += len(r.get("leases", ()))


def step_lose_partner():
    """The partner loses its storage: a fresh node, which must recover everything."""
    S["up"] = False
    S["wire"] = []
    S["a"].peer_closed("a", S["now"])
    _drain_a()
    S["b"] = None


def step_resync_connect():
    step_connect()


def step_resync_tick():
    step_tick()


def partner_bound():
    from dhcpfo.lease import table as lt
    b = S["b"]
    return b.tables[0].count(lt.ACTIVE)


def board_bound():
    from dhcpfo.lease import table as lt
    return S["a"].tables[0].count(lt.ACTIVE)


def table_bytes():
    """Bytes the board's lease table preallocates (records + index)."""
    t = S["a"].tables[0]
    n = 0
    for name in ("_buf", "_ix", "_counts"):
        v = getattr(t, name, None)
        if v is not None:
            n += len(v) * (2 if name == "_ix" and not isinstance(v, (bytes, bytearray)) else 1)
    return n


def reset(now=1000):
    S.clear()
    S["now"] = now
    S["acked"] = 0
    S["listed"] = 0


def test_board_scenario():
    """The measured scenario, end to end: every client bound, resync complete."""
    write_configs()
    reset()
    step_import()
    step_config()
    step_partner()
    step_build()
    step_connect()
    assert S["a"].relationships[0].state == S["b"].relationships[0].state
    step_events()
    for i in range(CLIENTS):
        step_serve(i)
    assert S["acked"] == CLIENTS, S["acked"]
    assert board_bound() == CLIENTS
    step_events()
    assert len(S["a"].events.recent(1000)) < 400  # bounded by bytes and count
    for off in range(0, CLIENTS, 32):
        step_mgmt(off)
    assert S["listed"] == CLIENTS, S["listed"]
    step_lose_partner()
    step_partner()
    step_resync_connect()
    for _ in range(60):
        if partner_bound() == CLIENTS:
            break
        step_resync_tick()
    assert partner_bound() == CLIENTS, partner_bound()
    S.clear()
    gc.collect()
