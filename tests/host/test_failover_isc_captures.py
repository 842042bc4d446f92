"""wire.failover against real ISC dhcpd 4.4.3-P1 traffic (shared/specs/isc-4.4.3-P1-captures).

Each TCP direction is reassembled, decoded with StreamDecoder, checked
against the sequences the interop notes describe (§4, §5, §15), and
re-encoded: our encoder must give back ISC's bytes exactly.
"""
import os

import pytest

scapy_all = pytest.importorskip("scapy.all")

from dhcpfo.compat import from_unix  # noqa: E402
from dhcpfo.failover import hashing, states  # noqa: E402
from dhcpfo.wire import failover as fo  # noqa: E402

CAPS = "/work/shared/specs/isc-4.4.3-P1-captures"
ISC = "198.19.247.1"
PROBE = "198.19.247.2"
POOL = [bytes((198, 19, 247, 100 + i)) for i in range(10)]


def _streams(name):
    """{(src, dst): bytes} for each TCP direction, reassembled by sequence number."""
    path = os.path.join(CAPS, name)
    if not os.path.exists(path):
        pytest.skip("capture missing: %s" % path)
    segs = {}
    for pkt in scapy_all.rdpcap(path):
        if scapy_all.TCP not in pkt:
            continue
        data = bytes(pkt[scapy_all.TCP].payload)
        if not data:
            continue
        key = (pkt[scapy_all.IP].src, pkt[scapy_all.IP].dst)
        segs.setdefault(key, {})[pkt[scapy_all.TCP].seq] = data  # retransmissions collapse
    out = {}
    for key, by_seq in segs.items():
        seqs = sorted(by_seq)
        buf = b""
        for s in seqs:
            assert s == seqs[0] + len(buf), "gap in %s stream" % (key,)
            buf += by_seq[s]
        out[key] = buf
    return out


def _decode(stream):
    d = fo.StreamDecoder()
    msgs = d.feed(stream)
    assert d.pending() == 0 and d.ignored == 0
    # byte-exact re-encoding of every message, in order
    assert b"".join(fo.encode(m) for m in msgs) == stream
    # and the same result fed in small pieces
    d2 = fo.StreamDecoder()
    again = []
    for i in range(0, len(stream), 7):
        again.extend(d2.feed(stream[i:i + 7]))
    assert again == msgs
    return msgs


def _types(msgs):
    return [m.mtype for m in msgs]


def _state_seq(msgs):
    return [(m.get_u8(fo.OPT_SERVER_STATE), m.get_u8(fo.OPT_SERVER_FLAGS))
            for m in msgs if m.mtype == fo.STATE]


def _check_connect(m):
    assert m.mtype == fo.CONNECT
    assert list(m.options) == [22, 14, 19, 28, 20, 27, 15, 11]
    assert m.get_bytes(fo.OPT_RELATIONSHIP_NAME) == b"foo"
    assert m.get_u32(fo.OPT_MAX_UNACKED) == 10
    assert m.get_u32(fo.OPT_RECEIVE_TIMER) == 30
    assert m.get_u8(fo.OPT_PROTOCOL_VERSION) == 1
    assert m.get_u8(fo.OPT_TLS_REQUEST) == 0
    assert m.get_u32(fo.OPT_MCLT) == 300
    hba = m.get_bytes(fo.OPT_HBA)
    assert hba == hashing.hba_split(128) == hashing.hba_for_percent(50)
    assert hashing.primary_share(hba) == 128


def _check_bndupds(msgs, status):
    ups = [m for m in msgs if m.mtype == fo.BNDUPD]
    for m in ups:
        # ISC's order: 2, 3, [4], [5], 13, 18, 25, [6], [12]; FREE/BACKUP carry no client
        assert list(m.options) == [2, 3, 13, 18, 25]
        assert m.get_u8(fo.OPT_BINDING_STATUS) == status
        assert m.get_bytes(fo.OPT_ASSIGNED_IP) in POOL
        assert m.xid != 0
    return ups


def _check_acks(updates, acks):
    """Every BNDACK carries option 2 only and the xid of the BNDUPD for that address."""
    by_xid = dict((m.xid, m) for m in updates)
    for a in acks:
        assert list(a.options) == [fo.OPT_ASSIGNED_IP]
        assert by_xid[a.xid].get_bytes(fo.OPT_ASSIGNED_IP) == a.get_bytes(fo.OPT_ASSIGNED_IP)


def test_isc_primary_probe_secondary():
    s = _streams("isc-primary_probe-secondary.pcap")
    isc, probe = _decode(s[(ISC, PROBE)]), _decode(s[(PROBE, ISC)])
    connect = isc[0]
    _check_connect(connect)
    assert connect.xid == 0
    assert connect.get_bytes(fo.OPT_VENDOR_CLASS) == b"isc-4.4.3-P1"
    # our builder writes exactly ISC's CONNECT
    now = from_unix(connect.time)
    mine = fo.make_connect(0, now, b"foo", 10, 30, 300, hba=hashing.hba_for_percent(50),
                           vendor=b"isc-4.4.3-P1")
    assert fo.encode(mine) == fo.encode(connect) == s[(ISC, PROBE)][:105]
    # ISC: CONNECT, STATE recover (+STARTUP), STATE recover, UPDREQALL, 10 FREE BNDUPDs,
    # STATE recover-done, UPDDONE, STATE normal, 5 BACKUP BNDUPDs, then CONTACTs
    assert _types(isc[:4]) == [fo.CONNECT, fo.STATE, fo.STATE, fo.UPDREQALL]
    assert _types(isc[4:14]) == [fo.BNDUPD] * 10
    assert _types(isc[14:17]) == [fo.STATE, fo.UPDDONE, fo.STATE]
    assert _types(isc[17:22]) == [fo.BNDUPD] * 5
    assert set(_types(isc[22:])) == {fo.CONTACT}
    assert _state_seq(isc) == [(states.RECOVER, fo.FLAG_STARTUP), (states.RECOVER, 0),
                               (states.RECOVER_DONE, 0), (states.NORMAL, 0)]
    free = _check_bndupds(isc[4:14], fo.B_FREE)
    assert sorted(m.get_bytes(fo.OPT_ASSIGNED_IP) for m in free) == POOL
    for m in free:  # never-used FREE leases: all times 0
        assert (m.get_u32(13), m.get_u32(18), m.get_u32(25)) == (0, 0, 0)
    backup = _check_bndupds(isc[17:22], fo.B_BACKUP)
    for m in backup:  # pool balancing: 13 = 0, 18 = 25 = now
        assert m.get_u32(13) == 0 and m.get_u32(18) == m.get_u32(25) > 0
        assert m.get_time(fo.OPT_STOS) is not None
    # ISC numbers its own messages 0, 1, 2, ...; its UPDDONE carries the request's xid
    assert [m.xid for m in isc if m.mtype != fo.UPDDONE] == list(range(len(isc) - 1))
    # CONTACT every 10 s (a third of our receive-timer 30)
    contacts = [m.time for m in isc if m.mtype == fo.CONTACT]
    assert all(b - a == 10 for a, b in zip(contacts, contacts[1:]))
    # the probe's side, and the xid pairing rules (interop §5)
    assert probe[0].mtype == fo.CONNECTACK and probe[0].xid == connect.xid
    updreqall_isc = isc[3]
    upddone_probe = [m for m in probe if m.mtype == fo.UPDDONE][0]
    assert upddone_probe.xid == updreqall_isc.xid
    updreqall_probe = [m for m in probe if m.mtype == fo.UPDREQALL][0]
    assert isc[15].xid == updreqall_probe.xid  # ISC's UPDDONE answers the probe's request
    _check_acks(free + backup, [m for m in probe if m.mtype == fo.BNDACK])
    assert fo.time_skew(connect, now) == 0 and fo.time_skew(probe[0], now) == 0


def test_isc_secondary_probe_primary():
    s = _streams("isc-secondary_probe-primary.pcap")
    probe, isc = _decode(s[(PROBE, ISC)]), _decode(s[(ISC, PROBE)])
    _check_connect(probe[0])
    ack = isc[0]
    assert ack.mtype == fo.CONNECTACK and ack.xid == probe[0].xid == 100
    # CONNECTACK: 22, 14, 19, 28, 20, 26 (TLS-reply because the CONNECT had TLS-request)
    assert list(ack.options) == [22, 14, 19, 28, 20, 26]
    assert ack.get_u8(fo.OPT_TLS_REPLY) == 0 and not ack.has(fo.OPT_REJECT_REASON)
    mine = fo.make_connectack(ack.xid, from_unix(ack.time), b"foo", 10, 30, vendor=b"isc-4.4.3-P1", tls_reply=0)
    assert fo.encode(mine) == fo.encode(ack)
    assert isc[1].xid == 0  # ISC's own link xids start at 0
    assert _state_seq(isc) == [(states.RECOVER, fo.FLAG_STARTUP), (states.RECOVER, 0),
                               (states.RECOVER_DONE, 0), (states.NORMAL, 0)]
    free = _check_bndupds(isc, fo.B_FREE)
    assert len(free) == 10
    _check_acks(free, [m for m in probe if m.mtype == fo.BNDACK])
    upddone = [m for m in isc if m.mtype == fo.UPDDONE][0]
    assert upddone.xid == [m for m in probe if m.mtype == fo.UPDREQALL][0].xid


def test_isc_primary_without_max_unacked_sends_no_bndupd():
    s = _streams("isc-primary_probe-secondary-without-max-unacked.pcap")
    isc, probe = _decode(s[(ISC, PROBE)]), _decode(s[(PROBE, ISC)])
    assert probe[0].mtype == fo.CONNECTACK and not probe[0].has(fo.OPT_MAX_UNACKED)
    assert fo.BNDUPD not in _types(isc)
    assert fo.UPDREQALL in _types(isc)


def test_isc_states_follow_our_machine():
    """The states ISC reported drive our machine to NORMAL the way ISC went (interop §15.1)."""
    s = _streams("isc-primary_probe-secondary.pcap")
    isc = _decode(s[(ISC, PROBE)])
    me = states.next_state(states.STARTUP, states.EV_COMM_UP, states.RECOVER, primary=False,
                           previous=states.startup_previous(None))
    assert me == states.RECOVER
    assert states.request_on(me, states.RECOVER, False, full=True) == fo.UPDREQALL
    me = states.next_state(me, states.EV_UPDDONE, primary=False, skip_wait=True)
    assert me == states.RECOVER_DONE
    for st_value, _flags in _state_seq(isc):
        n = states.next_state(me, states.EV_PARTNER_STATE, st_value, primary=False)
        me = n if n is not None else me
    assert me == states.NORMAL


def test_isc_stream_fails_a_keyed_decoder():
    """ISC never sends a digest: a dhcpfo configured with a secret must not pair with ISC."""
    s = _streams("isc-primary_probe-secondary.pcap")
    d = fo.StreamDecoder(key=b"secret")
    with pytest.raises(fo.FailoverError) as ei:
        d.feed(s[(ISC, PROBE)])
    assert ei.value.reason == "bad-digest" and ei.value.reject == fo.REJ_MISSING_DIGEST


def test_isc_rejection_logs_match_our_decoder():
    """The two frames ISC dropped the link on are ones our decoder closes on or never sends."""
    for log, needle in (("isc-primary-rejects-ddns-option.dhcpd.log", "option DDNS"),
                        ("isc-primary-rejects-payload-offset-8.dhcpd.log", "message overflow at data")):
        path = os.path.join(CAPS, log)
        if os.path.exists(path):
            with open(path) as f:
                assert needle in f.read()
    bad_offset = fo.encode(fo.make_contact(1, 0))
    bad_offset = bad_offset[:3] + b"\x08" + bad_offset[4:]
    with pytest.raises(fo.FailoverError) as ei:
        fo.StreamDecoder().feed(bad_offset)
    assert ei.value.reason == "bad-offset"
    with pytest.raises(fo.FailoverError):
        fo.encode(fo.Message(fo.BNDUPD, 0, 1, {fo.OPT_DDNS: b"\x00\x01\x00\x00"}))


# ---------------------------------------------------------------------------
# Wireshark's dhcpfo dissector on our own bytes (interop §14).

TSHARK = "/usr/bin/tshark"
_BAD = "_ws.malformed || dhcpfo.bad_length || _ws.expert.severity >= 0x00600000"  # warning and up


def _tshark(*args):
    import subprocess

    if not os.path.exists(TSHARK):
        pytest.skip("tshark not installed (%s); `make sysdeps` installs it" % TSHARK)
    r = subprocess.run([TSHARK, "-n", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _fields(path, *fields):
    args = ["-r", path, "-d", "tcp.port==647,dhcpfo", "-Y", "dhcpfo", "-T", "fields", "-E", "occurrence=a",
            "-E", "separator=|"]
    for f in fields:
        args += ["-e", f]
    cols = [[] for _ in fields]
    for line in _tshark(*args).splitlines():
        for i, v in enumerate(line.split("|")):
            cols[i].extend(int(x, 0) for x in v.split(",") if x)
    return cols


def _write_stream_pcap(path, stream, cuts):
    """One TCP connection 127.0.0.1:40000 -> 127.0.0.1:647 carrying `stream`, cut at `cuts`."""
    from scapy.all import IP, TCP, Ether, wrpcap

    c, s = ("127.0.0.1", 40000), ("127.0.0.1", 647)
    isn, sisn = 1000, 5000
    pkts = [
        Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="S", seq=isn - 1),
        Ether() / IP(src=s[0], dst=c[0]) / TCP(sport=s[1], dport=c[1], flags="SA", seq=sisn - 1, ack=isn),
        Ether() / IP(src=c[0], dst=s[0]) / TCP(sport=c[1], dport=s[1], flags="A", seq=isn, ack=sisn),
    ]
    bounds = [0] + [x for x in cuts if 0 < x < len(stream)] + [len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        seg = TCP(sport=c[1], dport=s[1], flags="PA", seq=isn + a, ack=sisn)
        pkts.append(Ether() / IP(src=c[0], dst=s[0]) / seg / stream[a:b])
    wrpcap(path, pkts)


def _our_messages():
    now = from_unix(1795546061)
    addr = b"\xc6\x13\xf7\x64"
    return [
        fo.make_connect(0, now, b"foo", 10, 30, 300, hba=hashing.hba_for_percent(50)),
        fo.make_connectack(0, now, b"foo", 10, 30, tls_reply=0),
        fo.make_state(1, now, states.RECOVER, fo.FLAG_STARTUP, stos=now),
        fo.make_state(2, now, states.RECOVER_WAIT, 0, stos=now),
        fo.make_updreqall(3, now),
        fo.make_bndupd(4, now, addr, fo.B_ACTIVE, now + 600, now + 900, now, client_id=b"\x01\x52\x54\x00\x12\x34\x56",
                       chaddr=b"\x01\x52\x54\x00\x12\x34\x56", cltt=now, ip_flags=fo.IPF_RESERVED),
        fo.make_bndupd(5, now, addr, fo.B_BACKUP, None, now, now),
        fo.make_bndack(4, now, addr),
        fo.make_bndack(5, now, addr, reject=fo.REJ_LESS_CRITICAL, message="dueling update"),
        fo.make_upddone(3, now),
        fo.make_poolreq(6, now),
        fo.make_poolresp(6, now, 5),
        fo.make_updreq(7, now),
        fo.make_contact(8, now),
        fo.make_disconnect(9, now, fo.REJ_NO_TRAFFIC, "no traffic"),
    ]


def test_tshark_decodes_our_stream(tmp_path):
    msgs = _our_messages()
    stream = b"".join(fo.encode(m) for m in msgs)
    # several messages per segment, and messages split across segments
    path = str(tmp_path / "ours.pcap")
    _write_stream_pcap(path, stream, [7, 105, 106, 200, 333, 334, 500])
    types, poffs, lengths, xids = _fields(path, "dhcpfo.type", "dhcpfo.poffset", "dhcpfo.length", "dhcpfo.xid")
    assert types == [m.mtype for m in msgs]  # numbers, not tshark's 7/9 labels
    assert poffs == [12] * len(msgs)
    assert lengths == [len(fo.encode(m)) for m in msgs]
    assert xids == [m.xid for m in msgs]
    assert _tshark("-r", path, "-d", "tcp.port==647,dhcpfo", "-Y", _BAD) == ""
    # a few decoded values, as Wireshark reads them
    st_, flags, ipflags, mclt, hba = _fields(path, "dhcpfo.serverstatus", "dhcpfo.serverflag", "dhcpfo.ipflags",
                                             "dhcpfo.mclt", "dhcpfo.receivetimer")
    assert st_ == [states.RECOVER, states.RECOVER_WAIT] and flags == [1, 0]
    assert ipflags == [fo.IPF_RESERVED] and mclt == [300] and hba == [30, 30]


def test_tshark_with_digest_flags_only_the_private_type(tmp_path):
    msgs = _our_messages()
    stream = b"".join(fo.encode(m, b"secret") for m in msgs)
    path = str(tmp_path / "keyed.pcap")
    _write_stream_pcap(path, stream, [50, 51, 400])
    types, codes = _fields(path, "dhcpfo.type", "dhcpfo.optioncode")
    assert types == [m.mtype for m in msgs]
    assert codes.count(fo.OPT_DIGEST) == len(msgs)
    out = _tshark("-r", path, "-d", "tcp.port==647,dhcpfo", "-Y", _BAD, "-T", "fields",
                  "-E", "occurrence=a", "-E", "aggregator=;", "-e", "_ws.expert.message")
    complaints = set()
    for line in out.splitlines():
        complaints.update(x for x in line.split(";") if x)
    # Wireshark knows only digest type 1 (HMAC-MD5); the digest bytes print as a string
    assert complaints <= {"Message digest type: 2, not allowed", "Trailing stray characters"}
    assert "Message digest type: 2, not allowed" in complaints


def test_tshark_and_our_decoder_agree_on_isc_captures():
    for name in ("isc-primary_probe-secondary.pcap", "isc-secondary_probe-primary.pcap",
                 "isc-primary_probe-secondary-without-max-unacked.pcap"):
        path = os.path.join(CAPS, name)
        if not os.path.exists(path):
            pytest.skip("capture missing: %s" % path)
        types, xids = _fields(path, "dhcpfo.type", "dhcpfo.xid")
        ours = []
        seen = []
        for pkt in scapy_all.rdpcap(path):
            if scapy_all.TCP in pkt and bytes(pkt[scapy_all.TCP].payload):
                seen.append(pkt)
        # tshark reports in capture order; decode each direction and merge by frame
        decoders = {}
        for pkt in seen:
            key = (pkt[scapy_all.IP].src, pkt[scapy_all.IP].dst)
            d = decoders.setdefault(key, fo.StreamDecoder())
            ours.extend(d.feed(bytes(pkt[scapy_all.TCP].payload)))
        assert types == [m.mtype for m in ours], name
        assert xids == [m.xid for m in ours], name
        assert _tshark("-r", path, "-Y", _BAD) == ""
