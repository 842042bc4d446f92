"""Management authentication: hello, challenge-response, roles, replay, back-off."""

from dhcpfo.mgmt import session as ms

ADMIN_TOKEN = b"admin-secret-token"
USER_TOKEN = b"read-only-token"
CNONCE = b"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"


def _gate():
    return ms.Gate({ms.ADMIN: ADMIN_TOKEN, ms.USER: USER_TOKEN})


def _login(sess, token, role, now=100):
    ans, run = sess.handle({"cmd": "hello"}, now)
    assert run is None and ans["ok"] and ans["auth"] == "hmac-sha256"
    nonce = ms.unhex(ans["nonce"])
    proof = ms.client_proof(token, nonce, CNONCE, role)
    ans, run = sess.handle({"cmd": "auth", "role": role, "cnonce": _hex(CNONCE),
                            "proof": proof}, now)
    return ans, nonce, proof


def _hex(b):
    return "".join("%02x" % x for x in b)


def test_nothing_but_hello_before_auth():
    s = _gate().open("198.18.0.9", b"N" * 16)
    ans, run = s.handle({"cmd": "status"}, 1)
    assert run is None and not ans["ok"] and "not authenticated" in ans["error"]
    ans, run = s.handle({"cmd": "hello"}, 1)
    assert ans["ok"] and ans["nonce"] == _hex(b"N" * 16) and "role" not in ans


def test_admin_login_and_mutual_proof():
    s = _gate().open("a", b"n1" * 8)
    ans, nonce, _ = _login(s, ADMIN_TOKEN, ms.ADMIN)
    assert ans["ok"] and ans["role"] == ms.ADMIN
    assert ans["proof"] == ms.server_proof(ADMIN_TOKEN, nonce, CNONCE, ms.ADMIN)
    assert s.may_change()
    ans, run = s.handle({"cmd": "status"}, 100)
    assert ans is None and run == {"cmd": "status"}


def test_user_role_cannot_change():
    s = _gate().open("a", b"n2" * 8)
    ans, _, _ = _login(s, USER_TOKEN, ms.USER)
    assert ans["ok"] and ans["role"] == ms.USER
    assert not s.may_change()


def test_wrong_token_and_wrong_role_refused():
    g = _gate()
    s = g.open("x", b"n3" * 8)
    ans, _, _ = _login(s, b"guess", ms.ADMIN)
    assert not ans["ok"] and "wrong role or token" in ans["error"]
    assert s.role is None
    # the user token does not open the administrator role
    s2 = g.open("y", b"n4" * 8)
    ans, _, _ = _login(s2, USER_TOKEN, ms.ADMIN)
    assert not ans["ok"] and s2.role is None


def test_replayed_handshake_fails_on_a_new_connection():
    g = _gate()
    s1 = g.open("a", b"first-nonce-0001")
    ans, _, proof = _login(s1, ADMIN_TOKEN, ms.ADMIN)
    assert ans["ok"]
    s2 = g.open("a", b"other-nonce-0002")
    s2.handle({"cmd": "hello"}, 101)
    ans, _ = s2.handle({"cmd": "auth", "role": ms.ADMIN, "cnonce": _hex(CNONCE), "proof": proof}, 101)
    assert not ans["ok"] and s2.role is None
    # and the same proof cannot be spent twice on the first connection
    ans, _ = s1.handle({"cmd": "auth", "role": ms.ADMIN, "cnonce": _hex(CNONCE), "proof": proof}, 101)
    assert not ans["ok"]


def test_backoff_grows_and_locks_out_even_a_right_token():
    g = _gate()
    waits = []
    now = 1000
    for i in range(3):
        s = g.open("evil", b"z" * 16)
        ans, _, _ = _login(s, b"bad", ms.ADMIN, now=now)
        waits.append(g.locked_for("evil", now))
        now += waits[-1]        # try again the moment the lock-out ends
    assert waits == [1, 2, 4]
    # while locked, even the right token is not checked
    s = g.open("evil", b"q" * 16)
    ans, _, _ = _login(s, ADMIN_TOKEN, ms.ADMIN, now=now - 1)
    assert not ans["ok"] and "retry in" in ans["error"] and s.role is None
    # after the lock-out the right token works and clears the record
    s = g.open("evil", b"r" * 16)
    ans, _, _ = _login(s, ADMIN_TOKEN, ms.ADMIN, now=now)
    assert ans["ok"] and g.locked_for("evil", now) == 0
    # another source was never locked
    assert g.locked_for("friend", 1000) == 0


def test_backoff_table_is_bounded():
    g = _gate()
    for i in range(ms.SOURCES * 3):
        g.failed("src%d" % i, 50)
    assert len(g._fails) == ms.SOURCES


def test_abusive_connection_is_closed():
    s = _gate().open("a", b"n" * 16)
    for i in range(ms.MAX_UNAUTH_REQUESTS):
        s.handle({"cmd": "get-leases"}, 1)
    assert s.closed


def test_malformed_auth_is_an_error_not_a_crash():
    s = _gate().open("a", b"n" * 16)
    s.handle({"cmd": "hello"}, 1)
    for bad in ({"cmd": "auth"}, {"cmd": "auth", "cnonce": "zz", "proof": "00"},
                {"cmd": "auth", "cnonce": 5, "proof": None}, {"cmd": "auth", "role": 7, "cnonce": "0011223344556677", "proof": "x"}):
        ans, run = s.handle(bad, 1)
        assert not ans["ok"] and run is None


def test_trusted_console_and_no_keys_are_administrator():
    s = _gate().open("console", b"n" * 16, trusted=True)
    ans, run = s.handle({"cmd": "hello"}, 1)
    assert ans["role"] == ms.ADMIN and ans["auth"] == "none"
    assert s.handle({"cmd": "status"}, 1) == (None, {"cmd": "status"})
    s = ms.Gate({}).open("127.0.0.1", b"n" * 16)
    assert s.may_change()


def test_unknown_role_in_configuration_is_refused():
    try:
        ms.Gate({"root": b"x"})
    except ValueError as e:
        assert "root" in str(e)
    else:
        raise AssertionError("unknown role accepted")
