"""Client and Seat: check licence seats out of floatd and back in."""

import ctypes
import logging
import threading
import weakref

from . import _native as n
from .errors import BadArgument, WouldBlock, check, error_for

log = logging.getLogger("floatd")

_STATES = {
    n.SEAT_HELD: "held",
    n.SEAT_RECONNECTING: "reconnecting",
    n.SEAT_EXPIRED: "expired",
    n.SEAT_LOST: "lost",
    n.SEAT_RETURNED: "returned",
}
_EVENTS = {
    n.EVENT_TRYING: "trying",
    n.EVENT_RECONNECTING: "reconnecting",
    n.EVENT_FAILED_OVER: "failed_over",
    n.EVENT_RECOVERED: "recovered",
    n.EVENT_EXPIRED: "expired",
    n.EVENT_LOST: "lost",
}
_U32_MAX = 2**32 - 1

# Set while this thread runs the application's event callback.
_callback = threading.local()


def _in_callback():
    return getattr(_callback, "active", False)


class Event:
    """Something that happened to the connection or to a seat.

    `kind` is "trying" (a call has waited 2 s and is still trying
    `server`), "reconnecting" (the connection to `server` was lost while
    seats were held), "failed_over" (now served by `server`; `detail` is
    the server before), "recovered" (`seat` is held again, on `server`),
    "expired" (`seat`'s lease ran out before it could be renewed) or
    "lost" (a server refused `seat`; `detail` says why). `seat` is the
    Seat concerned, if any and still alive.
    """

    __slots__ = ("kind", "seat", "seat_id", "server", "detail")

    def __init__(self, kind, seat, seat_id, server, detail):
        self.kind = kind
        self.seat = seat
        self.seat_id = seat_id
        self.server = server
        self.detail = detail

    def __repr__(self):
        return (
            f"Event({self.kind!r}, seat_id={self.seat_id:#x}, "
            f"server={self.server!r}, detail={self.detail!r})"
        )


def _quote(value):
    value = str(value)
    if value and not any(ch in value for ch in ' \t"\\='):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _millis(name, seconds, minimum):
    ms = round(float(seconds) * 1000)
    if ms < minimum or ms > _U32_MAX:
        raise BadArgument(n.E_BAD_ARGUMENT, f"{name}={seconds!r}: out of range")
    return ms


def _bytes(value):
    return None if value is None else str(value).encode("utf-8")


def _whole(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _U32_MAX:
        raise BadArgument(n.E_BAD_ARGUMENT, f"{name}={value!r}: expected a whole number >= 1")


def roam_check(feature, version=None, count=1, store_dir=None):
    """Offline, no client needed: whether a kept roam token lets `count`
    seats of `feature` at `version` run on this machine now. Returns when
    that roam ends (Unix seconds); raises NoRoam (saying why) otherwise."""
    _whole("count", count)
    until = ctypes.c_uint64()
    check(
        n.lib.floatd_roam_check(
            _bytes(feature), _bytes(version), count, _bytes(store_dir), ctypes.byref(until)
        )
    )
    return until.value


class Client:
    """A client of a floatd server or failover pair.

    `servers` is "host:port,host:port" or a list of them, primary first
    (None: the FLOATD_SERVERS environment variable). A library thread
    renews held seats (unless heartbeat="manual": then call heartbeat()
    at least every third of the lease) and moves them to the backup when
    the primary dies. `on_event`, if given, is called with an Event from a
    library thread; it must not call blocking methods of the client
    (they raise WouldBlock). Every method may be called from any thread.

    Use it as a context manager, or call close(): it returns every seat
    still held.
    """

    def __init__(
        self,
        servers=None,
        *,
        user=None,
        host=None,
        client_id=None,
        io_timeout=None,
        failover_timeout=None,
        heartbeat="auto",
        on_event=None,
    ):
        if servers is not None and not isinstance(servers, str):
            servers = ",".join(servers)
        options = []
        for key, value in (("user", user), ("host", host), ("client", client_id)):
            if value is not None:
                options.append(f"{key}={_quote(value)}")
        for key, value in (("io_timeout_ms", io_timeout), ("failover_timeout_ms", failover_timeout)):
            if value is not None:
                options.append(f"{key}={_millis(key, value, 1)}")
        options.append(f"heartbeat={_quote(heartbeat)}")
        self._ptr = None
        self._cond = threading.Condition()
        self._busy = 0
        self._seats = weakref.WeakValueDictionary()
        self._on_event = None
        self._trampoline = None
        handle = ctypes.c_void_p()
        check(n.lib.floatd_client_new(_bytes(servers), _bytes(" ".join(options)), ctypes.byref(handle)))
        self._ptr = handle.value
        if on_event is not None:
            self.on_event = on_event

    # -- the pointer, guarded so close() never frees it under a call --

    def _enter(self):
        with self._cond:
            if self._ptr is None:
                raise BadArgument(n.E_BAD_ARGUMENT, "the client is closed")
            self._busy += 1
            return self._ptr

    def _leave(self):
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()

    def _call(self, fn, *args):
        ptr = self._enter()
        try:
            return fn(ptr, *args)
        finally:
            self._leave()

    # -- events --

    @property
    def on_event(self):
        return self._on_event

    @on_event.setter
    def on_event(self, callback):
        me = weakref.ref(self)

        def trampoline(_user_data, kind, seat_id, server, detail):
            client = me()
            if client is None or client._on_event is None:
                return
            event = Event(
                _EVENTS.get(kind, "unknown"),
                client._seats.get(seat_id),
                seat_id,
                n.text(server),
                n.text(detail),
            )
            _callback.active = True
            try:
                client._on_event(event)
            except Exception:
                log.exception("the floatd event callback raised")
            finally:
                _callback.active = False

        fn = n.EVENT_FN(trampoline) if callback is not None else n.EVENT_FN()
        check(self._call(n.lib.floatd_client_set_callback, fn, None))
        # Keep the C-callable alive as long as the library may call it.
        self._trampoline = fn
        self._on_event = callback

    # -- seats --

    def checkout(self, feature, version=None, count=1, wait=0):
        """Checks out `count` seats of `feature` at `version` or newer.
        With `wait` (seconds) > 0 it waits in the server's queue that long
        when no seat is free; otherwise it raises NoSeats at once. Returns
        a Seat (a context manager that checks it in)."""
        wait_ms = 0 if not wait else _millis("wait", wait, 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _U32_MAX:
            raise BadArgument(n.E_BAD_ARGUMENT, f"count={count!r}: expected a whole number >= 1")
        seat = ctypes.c_void_p()
        check(
            self._call(
                n.lib.floatd_checkout,
                _bytes(feature),
                _bytes(version),
                count,
                wait_ms,
                ctypes.byref(seat),
            )
        )
        made = Seat(self, seat.value)
        self._seats[made.id] = made
        return made

    # -- roaming (docs/ROAMING.md) --

    def roam(self, feature, days, version=None, count=1, store_dir=None):
        """Roams `count` seats of `feature` (at `version` or newer) for
        `days` days to this machine: the server counts them until the roam
        ends, and the token that lets the application run offline is kept
        in the roam store (`store_dir`, else $FLOATD_ROAM_DIR, else
        ~/.local/share/floatd/roams). Returns when the roam ends (Unix
        seconds). Raises NotRoamable, RoamTooLong, TooManyRoaming,
        RoamExcluded or any checkout refusal."""
        _whole("count", count)
        _whole("days", days)
        until = ctypes.c_uint64()
        check(
            self._call(
                n.lib.floatd_roam,
                _bytes(feature),
                _bytes(version),
                count,
                days,
                _bytes(store_dir),
                ctypes.byref(until),
            )
        )
        return until.value

    def extend_roam(self, roam, days, store_dir=None):
        """Makes the kept roam `roam` names (a feature, or a token) last
        `days` days from today; returns when it now ends."""
        _whole("days", days)
        until = ctypes.c_uint64()
        check(
            self._call(
                n.lib.floatd_roam_extend, _bytes(roam), days, _bytes(store_dir), ctypes.byref(until)
            )
        )
        return until.value

    def return_roam(self, roam=None, store_dir=None):
        """Hands the kept roams `roam` names (a feature, or a token; None:
        every one) back early; their seats are free at once."""
        check(self._call(n.lib.floatd_roam_return, _bytes(roam), _bytes(store_dir)))

    def heartbeat(self):
        """Renews every held seat now (for heartbeat="manual")."""
        check(self._call(n.lib.floatd_heartbeat))

    def cancel(self):
        """Makes every blocking call in progress on this client, in any
        thread, raise Cancelled promptly."""
        check(self._call(n.lib.floatd_client_cancel))

    def close(self):
        """Cancels calls in progress, returns every seat still held and
        frees the client. Raises the error of returning seats, if any
        (they then return when their lease ends). Closing twice is fine."""
        if _in_callback():
            raise WouldBlock(n.E_WOULD_BLOCK, "close() from inside the event callback")
        with self._cond:
            ptr = self._ptr
            if ptr is None:
                return
            self._ptr = None
            n.lib.floatd_client_cancel(ptr)
            while self._busy:
                self._cond.wait()
        code = n.lib.floatd_client_free(ptr)
        message = n.last_error()
        for seat in list(self._seats.values()):
            seat._release()
        self._trampoline = None
        if code != n.OK:
            raise error_for(code, message)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            self.close()
        except Exception:
            if kind is None:
                raise
            log.warning("closing the floatd client after an error", exc_info=True)
        return False

    def __del__(self):
        if getattr(self, "_ptr", None) is not None:
            try:
                self.close()
            except Exception:
                pass


class Seat:
    """A checkout: `count` seats of `feature`, granted from a licence of
    `version` that expires on `expires` ("YYYY-MM-DD" or "permanent").
    `lease` is in seconds. Use it as a context manager or call checkin()."""

    def __init__(self, client, ptr):
        lib = n.lib
        self._client = client
        self._ptr = ptr
        self._lock = threading.Lock()
        self.id = lib.floatd_seat_id(ptr)
        self.feature = n.text(lib.floatd_seat_feature(ptr))
        self.version = n.text(lib.floatd_seat_version(ptr))
        self.expires = n.text(lib.floatd_seat_expires(ptr))
        self.count = lib.floatd_seat_count(ptr)
        self.lease = lib.floatd_seat_lease_ms(ptr) / 1000.0

    @property
    def state(self):
        """"held", "reconnecting" (the library is reclaiming it after a
        lost connection), "expired" (its lease ran out; the library keeps
        trying), "lost" (a server refused it) or "returned"."""
        with self._lock:
            if self._ptr is None:
                return "returned"
            return _STATES.get(n.lib.floatd_seat_state(self._ptr), "unknown")

    @property
    def held(self):
        """True while the seat may be used (held or being reclaimed)."""
        return self.state in ("held", "reconnecting")

    def checkin(self):
        """Returns the seat to the server. Raises SeatLost if it was lost
        before, or the error of reaching the server (the seat then returns
        when its lease ends). Checking in twice does nothing."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        code = n.lib.floatd_checkin(ptr)
        if code == n.E_WOULD_BLOCK:
            with self._lock:
                self._ptr = ptr  # nothing was done
        check(code)

    def _release(self):
        """Frees the C seat after its client was closed (no network)."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is not None:
            n.lib.floatd_checkin(ptr)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            self.checkin()
        except Exception:
            if kind is None:
                raise
            log.warning("checking in after an error", exc_info=True)
        return False

    def __repr__(self):
        return f"Seat({self.feature!r}, version={self.version!r}, count={self.count}, state={self.state!r})"
