"""The C library, loaded with ctypes, and the numbers of its API.

The numbers are those of floatd_client.h; a test compares the two.
"""

import ctypes
import ctypes.util
import os

# Result codes (FLOATD_OK and FLOATD_E_*).
OK = 0
E_BAD_ARGUMENT = -1
E_UNREACHABLE = -2
E_TIMEOUT = -3
E_NO_SEATS = -4
E_NO_SUCH_FEATURE = -5
E_NO_VERSION = -6
E_LICENCE_EXPIRED = -7
E_RESERVED = -8
E_COUNT_TOO_LARGE = -9
E_MAX_REACHED = -10
E_EXCLUDED = -11
E_NOT_INCLUDED = -12
E_SEAT_LOST = -13
E_RECOVERING = -14
E_BACKUP_EXPIRED = -15
E_WOULD_BLOCK = -16
E_CANCELLED = -17
E_PROTOCOL = -18
E_SERVER = -19
E_INTERNAL = -20
E_NOT_ROAMABLE = -21
E_ROAM_TOO_LONG = -22
E_TOO_MANY_ROAMING = -23
E_ROAM_EXCLUDED = -24
E_NO_ROAM = -25
E_ROAM_KEY = -26
E_ROAM_STORE = -27
E_ROAM_UNAVAILABLE = -28

# Seat states (FLOATD_SEAT_*).
SEAT_HELD = 1
SEAT_RECONNECTING = 2
SEAT_EXPIRED = 3
SEAT_LOST = 4
SEAT_RETURNED = 5

# Event kinds (FLOATD_EVENT_*).
EVENT_TRYING = 1
EVENT_RECONNECTING = 2
EVENT_FAILED_OVER = 3
EVENT_RECOVERED = 4
EVENT_EXPIRED = 5
EVENT_LOST = 6

LIBRARY_ENV = "FLOATD_CLIENT_LIBRARY"
# The library loaded (set by _load).
path = None
_NAME = "libfloatd_client.so"

EVENT_FN = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_int32, ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p
)


def _candidates():
    explicit = os.environ.get(LIBRARY_ENV)
    if explicit:
        return [explicit]
    found = [os.path.join(os.path.dirname(os.path.abspath(__file__)), _NAME)]
    system = ctypes.util.find_library("floatd_client")
    if system:
        found.append(system)
    return found


def _load():
    global path
    tried = []
    for candidate in _candidates():
        try:
            library = ctypes.CDLL(candidate)
            path = candidate
            return library
        except OSError as e:
            tried.append(f"{candidate}: {e}")
    raise ImportError(
        "cannot load the floatd client library (libfloatd_client.so): "
        + "; ".join(tried)
        + f". Install the package with pip from the floatd repository, "
        f"or set {LIBRARY_ENV} to the library's path."
    )


def _declare(lib):
    c = ctypes
    p = c.c_void_p
    signatures = {
        "floatd_version": ([], c.c_char_p),
        "floatd_protocol_version": ([], c.c_int32),
        "floatd_strerror": ([c.c_int32], c.c_char_p),
        "floatd_last_error": ([], c.c_char_p),
        "floatd_seat_state_name": ([c.c_int32], c.c_char_p),
        "floatd_event_name": ([c.c_int32], c.c_char_p),
        "floatd_client_new": ([c.c_char_p, c.c_char_p, c.POINTER(p)], c.c_int32),
        "floatd_client_free": ([p], c.c_int32),
        "floatd_client_set_callback": ([p, EVENT_FN, p], c.c_int32),
        "floatd_client_cancel": ([p], c.c_int32),
        "floatd_heartbeat": ([p], c.c_int32),
        "floatd_checkout": (
            [p, c.c_char_p, c.c_char_p, c.c_uint32, c.c_uint32, c.POINTER(p)],
            c.c_int32,
        ),
        "floatd_checkin": ([p], c.c_int32),
        "floatd_seat_state": ([p], c.c_int32),
        "floatd_seat_id": ([p], c.c_uint64),
        "floatd_seat_feature": ([p], c.c_char_p),
        "floatd_seat_version": ([p], c.c_char_p),
        "floatd_seat_expires": ([p], c.c_char_p),
        "floatd_seat_count": ([p], c.c_uint32),
        "floatd_seat_lease_ms": ([p], c.c_uint32),
        "floatd_roam": (
            [p, c.c_char_p, c.c_char_p, c.c_uint32, c.c_uint32, c.c_char_p, c.POINTER(c.c_uint64)],
            c.c_int32,
        ),
        "floatd_roam_extend": (
            [p, c.c_char_p, c.c_uint32, c.c_char_p, c.POINTER(c.c_uint64)],
            c.c_int32,
        ),
        "floatd_roam_return": ([p, c.c_char_p, c.c_char_p], c.c_int32),
        "floatd_roam_check": (
            [c.c_char_p, c.c_char_p, c.c_uint32, c.c_char_p, c.POINTER(c.c_uint64)],
            c.c_int32,
        ),
    }
    for name, (args, result) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = args
        fn.restype = result
    return lib


lib = _declare(_load())


def text(raw):
    """A C string from the library as str."""
    return (raw or b"").decode("utf-8", "replace")


def last_error():
    return text(lib.floatd_last_error())
