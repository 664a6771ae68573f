"""The Python package through real servers, driven by tests/sdk_python.rs.

    scenario.py failover SERVERS        hold cad through a failover
    scenario.py errors SERVERS          exceptions for each refusal, cancel
    scenario.py reentry SERVERS         blocking calls from the callback
    scenario.py threads SERVERS N ROUNDS COUNT
    scenario.py close-held SERVERS      close() returns the seats held
    scenario.py roam SERVERS STORE      roaming (a licence where `solver` may roam)

The licence has `cad` (count 1, version 1.0) and `solver` (count 3).
Progress goes to stdout a line at a time; where the test must look at the
server first, the scenario waits for a line on stdin. A failed check
raises, and the exit status is not 0.
"""

import sys
import threading
import time

import floatd


def say(*words):
    print(*words, flush=True)


def wait_for_go():
    if not sys.stdin.readline():
        raise SystemExit("stdin closed")


def failover(servers):
    def on_event(event):
        seat = event.seat.feature if event.seat else "-"
        say("event", event.kind, event.server, event.detail or "-", "seat=" + seat)

    with floatd.Client(servers, on_event=on_event) as client:
        with client.checkout("cad", version="1.0") as seat:
            say("held", seat.feature, seat.version, seat.expires, seat.state)
            wait_for_go()
            say("state", seat.state)
        say("checked in", seat.state)


def expect(exception, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except exception as e:
        assert isinstance(e, floatd.Error) and e.code < 0 and e.message, e
        return e
    raise AssertionError(f"{call.__name__} raised no {exception.__name__}")


def errors(servers):
    alice = floatd.Client(servers, user="alice", host="ws1")
    bob = floatd.Client(servers, user="Bob Smith", host="ws2")
    e = expect(floatd.NoSuchFeature, alice.checkout, "nosuch")
    assert isinstance(e, floatd.Denied) and "nosuch" in str(e), e
    expect(floatd.NoVersion, alice.checkout, "cad", version="9.0")
    expect(floatd.BadArgument, alice.checkout, "cad", version="not a version")
    expect(floatd.BadArgument, alice.checkout, "cad", count=0)
    expect(floatd.CountTooLarge, alice.checkout, "cad", count=5)
    seat = alice.checkout("cad")
    assert seat.state == "held" and seat.count == 1 and seat.lease > 0, seat
    expect(floatd.NoSeats, bob.checkout, "cad")
    expect(floatd.Timeout, bob.checkout, "cad", wait=0.3)
    threading.Timer(0.3, bob.cancel).start()
    expect(floatd.Cancelled, bob.checkout, "cad", wait=600)
    seat.checkin()
    seat.checkin()  # twice does nothing
    assert seat.state == "returned"
    with bob.checkout("cad") as again:
        assert again.held
    expect(floatd.BadArgument, floatd.Client, servers, io_timeout=0)
    expect(floatd.BadArgument, floatd.Client, "no-port")
    expect(floatd.BadArgument, floatd.Client, servers, heartbeat="sometimes")
    expect(floatd.Unreachable, floatd.Client("127.0.0.1:1").checkout, "cad")
    alice.close()
    alice.close()  # twice is fine
    expect(floatd.BadArgument, alice.checkout, "cad")
    bob.close()
    say("errors: ok")


def reentry(servers):
    seen = {}
    client = floatd.Client(servers, heartbeat="manual")

    def on_event(event):
        if event.kind != "lost":
            return
        seen["seat"] = event.seat
        seen["state"] = event.seat.state
        for name, call in (
            ("checkout", lambda: client.checkout("solver")),
            ("close", client.close),
            ("checkin", event.seat.checkin),
            ("heartbeat", client.heartbeat),
        ):
            try:
                call()
                seen[name] = "returned"
            except floatd.WouldBlock:
                seen[name] = "would block"

    client.on_event = on_event
    seat = client.checkout("solver")
    while seat.state == "held":
        time.sleep(0.02)
    assert seat.state == "expired", seat.state
    say("reentry: expired here; waiting for the server")
    wait_for_go()
    client.heartbeat()
    assert seen.get("seat") is seat, seen
    assert seen["state"] == "lost", seen
    for name in ("checkout", "close", "checkin", "heartbeat"):
        assert seen[name] == "would block", seen
    expect(floatd.SeatLost, seat.checkin)
    with client.checkout("solver"):
        pass
    client.close()
    say("reentry: ok")


def threads(servers, n, rounds, count):
    lock = threading.Lock()
    tally = {"holding": 0, "most": 0, "granted": 0, "denied": 0}

    def churn(client):
        for _ in range(rounds):
            try:
                seat = client.checkout("solver")
            except floatd.NoSeats:
                with lock:
                    tally["denied"] += 1
                continue
            with lock:
                tally["granted"] += 1
                tally["holding"] += 1
                tally["most"] = max(tally["most"], tally["holding"])
            time.sleep(0.002)
            with lock:
                tally["holding"] -= 1
            seat.checkin()

    with floatd.Client(servers) as client:
        workers = [threading.Thread(target=churn, args=(client,)) for _ in range(n)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    say("threads:", tally)
    assert tally["granted"] > 0 and tally["granted"] + tally["denied"] == n * rounds, tally
    assert tally["most"] <= count, tally
    say("threads: ok")


def close_held(servers):
    client = floatd.Client(servers)
    seats = [client.checkout("solver"), client.checkout("solver", count=2)]
    say("close-held: holding 3")
    wait_for_go()
    client.close()
    say("close-held: closed")
    assert [s.state for s in seats] == ["returned", "returned"], seats
    wait_for_go()
    say("close-held: ok")


def roam(servers, store):
    with floatd.Client(servers) as client:
        expect(floatd.NotRoamable, client.roam, "cad", 1, store_dir=store)
        expect(floatd.RoamTooLong, client.roam, "solver", 99, store_dir=store)
        expect(floatd.BadArgument, client.roam, "solver", 0, store_dir=store)
        expect(floatd.NoRoam, floatd.roam_check, "solver", store_dir=store)
        until = client.roam("solver", 1, version="1.0", count=2, store_dir=store)
        assert until > time.time(), until
        say("roam: roaming")
        wait_for_go()
        assert floatd.roam_check("solver", "1.0", 2, store_dir=store) == until
        e = expect(floatd.NoRoam, floatd.roam_check, "solver", "2.0", store_dir=store)
        assert "2.0" in str(e) or "version" in str(e), e
        assert client.extend_roam("solver", 3, store_dir=store) == until + 2 * 86400
        client.return_roam("solver", store_dir=store)
        expect(floatd.NoRoam, floatd.roam_check, "solver", store_dir=store)
        expect(floatd.NoRoam, client.return_roam, store_dir=store)
    say("roam: ok")


def main(argv):
    what, servers = argv[1], argv[2]
    if what == "failover":
        failover(servers)
    elif what == "errors":
        errors(servers)
    elif what == "reentry":
        reentry(servers)
    elif what == "threads":
        threads(servers, int(argv[3]), int(argv[4]), int(argv[5]))
    elif what == "close-held":
        close_held(servers)
    elif what == "roam":
        roam(servers, argv[3])
    else:
        raise SystemExit(f"unknown scenario {what}")
    say("library:", floatd._native.path)


if __name__ == "__main__":
    main(sys.argv)
