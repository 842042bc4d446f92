"""examples/*.json load cleanly and agree pairwise; config.load never lets
anything but ConfigError escape; scope offsets round-trip (CPython only)."""
import copy
import glob
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st

from dhcpfo import config
from dhcpfo_host import boardconf, confcheck
from dhcpfo.dhcp import scope

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.json")))
PAIRS = (("pair-primary.json", "pair-secondary.json"),
         ("hot-standby-primary.json", "hot-standby-secondary.json"))


def _load(name):
    with open(os.path.join(ROOT, "examples", name)) as f:
        return boardconf.load_text(f.read())


def test_every_example_loads_and_builds():
    names = [os.path.basename(p) for p in EXAMPLES]
    for want in ("single.json", "pair-primary.json", "pair-secondary.json",
                 "hot-standby-primary.json", "hot-standby-secondary.json"):
        assert want in names
    for p in EXAMPLES:
        with open(p) as f:
            text = f.read()
        c = boardconf.load_text(text)
        ss = scope.build(c)
        assert len(ss) == len(c.scopes) >= 1
        for s in ss:
            assert s.size > 0 and s.offset_of(s.addr_of(s.size - 1)) == s.size - 1


def test_pairs_agree():
    for a, b in PAIRS:
        ca, cb = _load(a), _load(b)
        assert confcheck.pair_errors(ca, cb) == [], (a, b)
        assert confcheck.pair_errors(cb, ca) == [], (b, a)
        assert {f.role for f in ca.failover + cb.failover} == {"primary", "secondary"}


def test_example_details():
    c = _load("hot-standby-primary.json")
    f = c.failover[0]
    assert f.hot_standby and f.hot_standby_role == "active" and f.reserve_percent == 5
    assert f.auto_state_switchover == 3600 and f.enable_authentication
    c = _load("single.json")
    s = scope.build(c).by_id(config.parse_ip("198.18.0.0"))
    phones = s.policies[0]
    assert phones.name == "ip-phones" and phones.has_ranges
    assert s.reservation_for(None, config.parse_mac("02:00:5e:10:00:01")) == \
        s.offset_of(config.parse_ip("198.18.0.120"))


# -- fuzz: mutate the examples and make sure only ConfigError comes out --------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.sampled_from(["198.18.0.1", "255.255.255.0", "aa:bb:cc:dd:ee:ff",
                                              "primary", "hot-standby", "0x0104", "*"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids, max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, path, value, delete):
    if not path:
        return value
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DOCS = []
for _p in EXAMPLES:
    with open(_p) as _f:
        _DOCS.append(json.load(_f))


@settings(max_examples=int(os.environ.get("FUZZ_N", "400")), deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 10**6), _json_values, st.booleans(),
       st.integers(0, 10**6), _json_values)
def test_mutated_examples_fail_only_with_config_error(i, j, value, delete, k, value2):
    doc = copy.deepcopy(_DOCS[i % len(_DOCS)])
    for n, v in ((j, value), (k, value2)):
        paths = list(_paths(doc))
        path = paths[n % len(paths)]
        doc = _mutate(doc, path, v, delete and bool(path))
    try:
        c = boardconf.load(doc)
    except config.ConfigError as e:
        assert e.errors and all(": " in x for x in e.errors)
        return
    scope.build(c)  # a valid config always builds


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**24 - 70000), st.integers(0, 65535), st.integers(0, 65535))
def test_offsets_round_trip(start, length, probe):
    def addr(n):
        return bytes((10, (n >> 16) & 255, (n >> 8) & 255, n & 255))

    end = start + length
    doc = {"server": {"server_id": "10.0.0.1"},
           "scopes": [{"id": "10.0.0.0", "mask": 8,
                       "ranges": [{"start": config.ip_str(addr(start)), "end": config.ip_str(addr(end))}]}]}
    s = scope.build(boardconf.load(doc)).by_id(addr(0))
    assert s.size == length + 1
    off = probe % s.size
    assert s.addr_of(off) == addr(start + off)
    assert s.offset_of(addr(start + off)) == off
    assert s.offset_of(addr(end + 1)) == -1 and s.offset_of(addr(start - 1)) == -1
