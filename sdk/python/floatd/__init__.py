"""floatd for Python: check licence seats out of a floatd server (or
failover pair) and back in.

    import floatd

    with floatd.Client("lic1:27000,lic2:27000") as client:
        with client.checkout("cad", version="2.0") as seat:
            ...  # work while the seat is held

Failover to the backup and reclaiming seats there happen inside the
library; `on_event` and `Seat.state` tell the application about them.
Errors are exceptions (floatd.NoSeats, floatd.Unreachable, ...), each
a floatd.Error with the library's result code. docs/SDK.md has the rest.
"""

from . import _native
from .client import Client, Event, Seat, roam_check
from .errors import (
    BackupExpired,
    BadArgument,
    Cancelled,
    CountTooLarge,
    Denied,
    Error,
    Excluded,
    InternalError,
    LicenceExpired,
    MaxReached,
    NoSeats,
    NoSuchFeature,
    NotIncluded,
    NoRoam,
    NotRoamable,
    NoVersion,
    ProtocolError,
    Recovering,
    Reserved,
    RoamExcluded,
    RoamKeyMismatch,
    RoamStoreError,
    RoamTooLong,
    RoamUnavailable,
    SeatLost,
    ServerError,
    Timeout,
    TooManyRoaming,
    Unreachable,
    WouldBlock,
)

__version__ = "0.1.0"


def version():
    """The version of the C library in use."""
    return _native.text(_native.lib.floatd_version())


def protocol_version():
    """The version of the client protocol the library speaks."""
    return _native.lib.floatd_protocol_version()


__all__ = [
    "Client", "Event", "Seat", "version", "protocol_version",
    "Error", "BadArgument", "Unreachable", "Timeout", "Denied", "NoSeats",
    "NoSuchFeature", "NoVersion", "LicenceExpired", "Reserved", "CountTooLarge",
    "MaxReached", "Excluded", "NotIncluded", "Recovering", "BackupExpired",
    "SeatLost", "WouldBlock", "Cancelled", "ProtocolError", "ServerError",
    "InternalError", "roam_check", "NotRoamable", "RoamTooLong", "TooManyRoaming",
    "RoamExcluded", "RoamUnavailable", "NoRoam", "RoamKeyMismatch", "RoamStoreError",
]
