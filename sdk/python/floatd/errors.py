"""Exceptions, one class per result code of the C library."""

from . import _native as n


class Error(Exception):
    """A floatd call failed. `code` is the library's result code (a
    negative FLOATD_E_* number); `message` says which server and why."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class BadArgument(Error, ValueError):
    """A bad argument, option or server list."""


class Unreachable(Error):
    """No licence server could be reached (or none was active) in time,
    or every server refused the connection."""


class Timeout(Error):
    """The wait for a seat ended without one."""


class Denied(Error):
    """The server refused the checkout; the subclass says why."""


class NoSeats(Denied):
    """All seats are in use."""


class NoSuchFeature(Denied):
    """No licence for the feature is served."""


class NoVersion(Denied):
    """The feature is served, but not at the version asked for or newer."""


class LicenceExpired(Denied):
    """Every licence that would serve the checkout has expired."""


class Reserved(Denied):
    """The free seats are reserved for others by the operator."""


class CountTooLarge(Denied):
    """More seats than the licence will ever hold."""


class MaxReached(Denied):
    """The operator's limit for this user, host or group is reached."""


class Excluded(Denied):
    """The operator excludes this user, host or group."""


class NotIncluded(Denied):
    """The operator allows only others for this feature."""


class Recovering(Denied):
    """The backup took over without being in sync: try again later."""


class BackupExpired(Denied):
    """The backup has served alone longer than the licence allows."""


class NotRoamable(Denied):
    """The licence does not let the feature roam (or the operator turned
    roaming of it off)."""


class RoamTooLong(Denied):
    """A longer roam than the licence, the operator or the licence's expiry
    allows."""


class TooManyRoaming(Denied):
    """As many seats of the feature are out roaming as allowed."""


class RoamExcluded(Denied):
    """The operator keeps this user, host or group from roaming the feature."""


class RoamUnavailable(Denied):
    """The other server of the pair is catching up or not acknowledging:
    no roam is granted or extended now; try again shortly."""


class NoRoam(Error):
    """No kept roam lets the feature run on this machine now (none kept,
    ended, for another machine, or not signed by the pinned key); or no
    kept roam matches."""


class RoamKeyMismatch(Error):
    """The server's roam token is signed by another key than the one pinned
    for its server pair; the roam was handed back."""


class RoamStoreError(Error):
    """The roam store cannot be read or written."""


class SeatLost(Error):
    """The seat is no longer held."""


class WouldBlock(Error):
    """A blocking call from inside the event callback (it would deadlock)."""


class Cancelled(Error):
    """Client.cancel interrupted the call."""


class ProtocolError(Error):
    """A server answered with something this library does not understand."""


class ServerError(Error):
    """The licence server failed."""


class InternalError(Error):
    """A fault inside the floatd client library."""


BY_CODE = {
    n.E_BAD_ARGUMENT: BadArgument,
    n.E_UNREACHABLE: Unreachable,
    n.E_TIMEOUT: Timeout,
    n.E_NO_SEATS: NoSeats,
    n.E_NO_SUCH_FEATURE: NoSuchFeature,
    n.E_NO_VERSION: NoVersion,
    n.E_LICENCE_EXPIRED: LicenceExpired,
    n.E_RESERVED: Reserved,
    n.E_COUNT_TOO_LARGE: CountTooLarge,
    n.E_MAX_REACHED: MaxReached,
    n.E_EXCLUDED: Excluded,
    n.E_NOT_INCLUDED: NotIncluded,
    n.E_SEAT_LOST: SeatLost,
    n.E_RECOVERING: Recovering,
    n.E_BACKUP_EXPIRED: BackupExpired,
    n.E_WOULD_BLOCK: WouldBlock,
    n.E_CANCELLED: Cancelled,
    n.E_PROTOCOL: ProtocolError,
    n.E_SERVER: ServerError,
    n.E_INTERNAL: InternalError,
    n.E_NOT_ROAMABLE: NotRoamable,
    n.E_ROAM_TOO_LONG: RoamTooLong,
    n.E_TOO_MANY_ROAMING: TooManyRoaming,
    n.E_ROAM_EXCLUDED: RoamExcluded,
    n.E_NO_ROAM: NoRoam,
    n.E_ROAM_KEY: RoamKeyMismatch,
    n.E_ROAM_STORE: RoamStoreError,
    n.E_ROAM_UNAVAILABLE: RoamUnavailable,
}


def error_for(code, message):
    """The exception for a result code."""
    return BY_CODE.get(code, Error)(code, message)


def check(code):
    """Raises the exception for a failed call's code, with the library's
    message (read on the thread that made the call, right after it)."""
    if code == n.OK:
        return
    raise error_for(code, n.last_error() or n.text(n.lib.floatd_strerror(code)))
