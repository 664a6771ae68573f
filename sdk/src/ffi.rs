//! The C ABI of libfloatd_client: every exported function, and the only
//! unsafe code in floatd.
//!
//! Each function checks every pointer for NULL, turns C strings into UTF-8
//! (or fails with `FLOATD_E_BAD_ARGUMENT`), calls the safe model
//! ([`crate::model`]) and catches any panic, so a panic never crosses into
//! the caller. The failure message of the last failed call on a thread is
//! kept for `floatd_last_error`.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

use crate::codes::{self, Failure, FLOATD_E_INTERNAL, FLOATD_OK};
use crate::model::{refuse_in_callback, SdkClient, SdkEvent, SdkSeat};
use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A client: the server list, the connection to the active server, the
/// seats it holds and the heartbeat thread. Create with
/// floatd_client_new, free with floatd_client_free.
pub struct floatd_client {
    inner: SdkClient,
}

/// One checkout: a seat (or `count` seats) of a feature. Created by
/// floatd_checkout; floatd_checkin returns it and frees it.
pub struct floatd_seat {
    inner: SdkSeat,
}

/// The event callback: `event` is a FLOATD_EVENT_* kind, `seat_id` names
/// the seat concerned (floatd_seat_id) or is 0, `server` and `detail` are
/// UTF-8 strings (never NULL, maybe empty) valid during the call only.
/// Called from the library's heartbeat thread or from a thread inside a
/// floatd call, never two at a time. It must return promptly, must not
/// unwind (throw) and must not call blocking floatd functions (they fail
/// with FLOATD_E_WOULD_BLOCK); the seat accessors, floatd_seat_state,
/// floatd_client_cancel and the error functions are fine.
pub type floatd_event_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        event: i32,
        seat_id: u64,
        server: *const c_char,
        detail: *const c_char,
    ),
>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn remember(failure: &Failure) {
    let text = CString::new(failure.message.replace('\0', "")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = text);
}

/// Runs `body`, turning a failure into its code (remembered for
/// floatd_last_error) and a panic into FLOATD_E_INTERNAL.
fn run(body: impl FnOnce() -> Result<(), Failure>) -> i32 {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return FLOATD_OK,
        Ok(Err(failure)) => failure,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Failure::new(FLOATD_E_INTERNAL, format!("internal error: {what}"))
        }
    };
    remember(&failure);
    failure.code
}

/// The string at `ptr`; `what` names the argument in the error.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(ptr: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::bad_argument(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a C string.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .map_err(|_| Failure::bad_argument(format!("{what} is not UTF-8")))
}

/// Like [`text`], but NULL means "not given".
///
/// # Safety
/// As for [`text`].
unsafe fn optional_text<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>, Failure> {
    if ptr.is_null() {
        Ok(None)
    } else {
        // SAFETY: as the caller promises.
        unsafe { text(ptr, what) }.map(Some)
    }
}

fn null(what: &str) -> Failure {
    Failure::bad_argument(format!("{what} is NULL"))
}

/// The version of this library, e.g. "0.1.0". A static string.
#[no_mangle]
pub extern "C" fn floatd_version() -> *const c_char {
    crate::VERSION_C.as_ptr()
}

/// The version of the client protocol this library speaks.
#[no_mangle]
pub extern "C" fn floatd_protocol_version() -> i32 {
    floatd::protocol::PROTOCOL_VERSION as i32
}

/// What a result code means, in a few words. A static string (also for
/// codes this version does not know).
#[no_mangle]
pub extern "C" fn floatd_strerror(code: i32) -> *const c_char {
    codes::describe(code).as_ptr()
}

/// The message of the last failed call on this thread (which server, what
/// it said), or "" if none failed. Valid until the next failed call on
/// this thread.
#[no_mangle]
pub extern "C" fn floatd_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The name of a FLOATD_SEAT_* state ("held", ...). A static string.
#[no_mangle]
pub extern "C" fn floatd_seat_state_name(state: i32) -> *const c_char {
    codes::state_name(state).as_ptr()
}

/// The name of a FLOATD_EVENT_* kind ("failed_over", ...). A static string.
#[no_mangle]
pub extern "C" fn floatd_event_name(event: i32) -> *const c_char {
    codes::event_name(event).as_ptr()
}

/// Creates a client. `servers` is "host:port,host:port" (primary first);
/// NULL or "" reads FLOATD_SERVERS. `options` is NULL or "key=value ..."
/// (user, host, client, io_timeout_ms, failover_timeout_ms,
/// heartbeat=auto|manual). Connects lazily, at the first checkout. On
/// success stores the client in `*client_out`; on failure stores NULL.
///
/// # Safety
/// `servers` and `options` are NULL or C strings; `client_out` is NULL or
/// points to writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn floatd_client_new(
    servers: *const c_char,
    options: *const c_char,
    client_out: *mut *mut floatd_client,
) -> i32 {
    run(|| {
        if client_out.is_null() {
            return Err(null("client_out"));
        }
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { *client_out = std::ptr::null_mut() };
        // SAFETY: NULL or C strings, as the caller promises.
        let servers = unsafe { optional_text(servers, "servers") }?;
        let options = unsafe { optional_text(options, "options") }?;
        let env = std::env::var(floatd::client::SERVERS_ENV).ok();
        let settings = crate::options::parse(servers, options, env)?;
        let client = Box::new(floatd_client {
            inner: SdkClient::new(settings),
        });
        // SAFETY: as above.
        unsafe { *client_out = Box::into_raw(client) };
        Ok(())
    })
}

/// Returns every seat the client still holds (trying the servers for at
/// most the I/O timeout), stops its heartbeat thread and frees it. NULL is
/// ignored. Seats not yet checked in stay valid (state
/// FLOATD_SEAT_RETURNED) until floatd_checkin frees them. Returns
/// FLOATD_OK, or the error of returning the seats (they then return when
/// their lease ends); from inside the callback FLOATD_E_WOULD_BLOCK, and
/// nothing is freed.
///
/// # Safety
/// `client` is NULL or a client from floatd_client_new, not yet freed, that
/// no other thread uses now or later.
#[no_mangle]
pub unsafe extern "C" fn floatd_client_free(client: *mut floatd_client) -> i32 {
    run(|| {
        if client.is_null() {
            return Ok(());
        }
        refuse_in_callback()?;
        // SAFETY: a pointer from Box::into_raw in floatd_client_new, freed once.
        let client = unsafe { Box::from_raw(client) };
        client.inner.close()
    })
}

/// Sets the event callback (NULL removes it); `user_data` is passed to it
/// unchanged.
///
/// # Safety
/// `client` is NULL or a live client; `callback`, if set, may be called
/// with `user_data` from any thread until it is replaced or the client freed.
#[no_mangle]
pub unsafe extern "C" fn floatd_client_set_callback(
    client: *mut floatd_client,
    callback: floatd_event_fn,
    user_data: *mut c_void,
) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client, as the caller promises.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        let sink = callback.map(|f| {
            // The pointer travels as a number so the closure may cross threads.
            let user_data = user_data as usize;
            Box::new(move |event: &SdkEvent| {
                // SAFETY: the caller gave `f` and `user_data` for this use;
                // the strings live for the duration of the call.
                unsafe {
                    f(
                        user_data as *mut c_void,
                        event.kind,
                        event.seat_id,
                        event.server.as_ptr(),
                        event.detail.as_ptr(),
                    )
                }
            }) as crate::model::Callback
        });
        client.inner.set_callback(sink)
    })
}

/// Makes every blocking call in progress on the client, in any thread,
/// return FLOATD_E_CANCELLED promptly (within milliseconds); calls made
/// afterwards work as usual. Safe from the callback and from any thread.
///
/// # Safety
/// `client` is NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn floatd_client_cancel(client: *mut floatd_client) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        client.inner.cancel();
        Ok(())
    })
}

/// Renews every seat the client holds now, reclaiming them on the active
/// server after a failover. For clients made with heartbeat=manual: call
/// it at least every third of the lease (floatd_seat_lease_ms).
///
/// # Safety
/// `client` is NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn floatd_heartbeat(client: *mut floatd_client) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        client.inner.heartbeat()
    })
}

/// Checks out `count` seats of `feature` at `version` or newer (NULL or
/// "": any version). With `wait_ms` 0 it fails at once when no seat is
/// free (FLOATD_E_NO_SEATS); otherwise it waits in the server's queue up
/// to `wait_ms` (then FLOATD_E_TIMEOUT). On success stores the seat in
/// `*seat_out`; on failure stores NULL.
///
/// # Safety
/// `client` is NULL or a live client; `feature` and `version` NULL or C
/// strings; `seat_out` NULL or writable storage for a pointer.
#[no_mangle]
pub unsafe extern "C" fn floatd_checkout(
    client: *mut floatd_client,
    feature: *const c_char,
    version: *const c_char,
    count: u32,
    wait_ms: u32,
    seat_out: *mut *mut floatd_seat,
) -> i32 {
    run(|| {
        if seat_out.is_null() {
            return Err(null("seat_out"));
        }
        // SAFETY: checked non-NULL; writable as the caller promises.
        unsafe { *seat_out = std::ptr::null_mut() };
        // SAFETY: NULL or a live client; NULL or C strings.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        let feature = unsafe { text(feature, "feature") }?;
        let version = unsafe { optional_text(version, "version") }?;
        let seat = client.inner.checkout(feature, version, count, wait_ms)?;
        // SAFETY: as above.
        unsafe { *seat_out = Box::into_raw(Box::new(floatd_seat { inner: seat })) };
        Ok(())
    })
}

/// Returns the seat to the server and frees it, whatever the outcome:
/// FLOATD_OK, FLOATD_E_SEAT_LOST if it was lost before, or the error of
/// reaching the server (the seat then returns when its lease ends). The
/// exceptions: a NULL seat (FLOATD_E_BAD_ARGUMENT) and a call from inside
/// the callback (FLOATD_E_WOULD_BLOCK), which free nothing.
///
/// # Safety
/// `seat` is NULL or a seat from floatd_checkout not yet checked in, that
/// no other thread uses now or later.
#[no_mangle]
pub unsafe extern "C" fn floatd_checkin(seat: *mut floatd_seat) -> i32 {
    run(|| {
        if seat.is_null() {
            return Err(null("seat"));
        }
        refuse_in_callback()?;
        // SAFETY: a pointer from Box::into_raw in floatd_checkout, freed once.
        let seat = unsafe { Box::from_raw(seat) };
        seat.inner.checkin()
    })
}

/// The seat's FLOATD_SEAT_* state, or FLOATD_E_BAD_ARGUMENT for NULL.
/// Never blocks on the network.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_state(seat: *const floatd_seat) -> i32 {
    // SAFETY: NULL or a live seat.
    match unsafe { seat.as_ref() } {
        None => run(|| Err(null("seat"))),
        Some(seat) => {
            catch_unwind(AssertUnwindSafe(|| seat.inner.state())).unwrap_or(FLOATD_E_INTERNAL)
        }
    }
}

/// A number naming the seat in events (never 0); 0 for NULL.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_id(seat: *const floatd_seat) -> u64 {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(0, |s| s.inner.id)
}

/// The feature checked out; "" for NULL. Valid while the seat lives.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_feature(seat: *const floatd_seat) -> *const c_char {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(c"".as_ptr(), |s| s.inner.feature.as_ptr())
}

/// The version of the licence that granted the seat; "" for NULL. Valid
/// while the seat lives.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_version(seat: *const floatd_seat) -> *const c_char {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(c"".as_ptr(), |s| s.inner.version.as_ptr())
}

/// When that licence expires: "YYYY-MM-DD" or "permanent"; "" for NULL.
/// Valid while the seat lives.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_expires(seat: *const floatd_seat) -> *const c_char {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(c"".as_ptr(), |s| s.inner.expires.as_ptr())
}

/// How many seats the checkout holds; 0 for NULL.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_count(seat: *const floatd_seat) -> u32 {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(0, |s| s.inner.count)
}

/// The seat's lease in milliseconds: the server returns it this long after
/// the last heartbeat. 0 for NULL.
///
/// # Safety
/// `seat` is NULL or a live seat.
#[no_mangle]
pub unsafe extern "C" fn floatd_seat_lease_ms(seat: *const floatd_seat) -> u32 {
    // SAFETY: NULL or a live seat.
    unsafe { seat.as_ref() }.map_or(0, |s| s.inner.lease_ms)
}

/// Writes `until` to `until_out` unless that is NULL.
///
/// # Safety
/// `until_out` is NULL or writable storage for a uint64_t.
unsafe fn give_until(until_out: *mut u64, until: u64) {
    if !until_out.is_null() {
        // SAFETY: non-NULL and writable, as the caller promises.
        unsafe { *until_out = until };
    }
}

/// Roams `count` seats of `feature` at `version` or newer (NULL or "": any)
/// for `days` days to this machine (docs/ROAMING.md): the server counts
/// them until the roam ends, and the token that lets the application run
/// offline meanwhile is kept in the roam store `store_dir` (NULL or "":
/// $FLOATD_ROAM_DIR, else ~/.local/share/floatd/roams). Stores when the
/// roam ends (Unix seconds) in `*until_out` unless it is NULL.
///
/// # Safety
/// `client` is NULL or a live client; the strings NULL or C strings;
/// `until_out` NULL or writable storage for a uint64_t.
#[no_mangle]
pub unsafe extern "C" fn floatd_roam(
    client: *mut floatd_client,
    feature: *const c_char,
    version: *const c_char,
    count: u32,
    days: u32,
    store_dir: *const c_char,
    until_out: *mut u64,
) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client; NULL or C strings.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        let feature = unsafe { text(feature, "feature") }?;
        let version = unsafe { optional_text(version, "version") }?;
        let dir = unsafe { optional_text(store_dir, "store_dir") }?;
        let until = client.inner.roam(feature, version, count, days, dir)?;
        // SAFETY: as the caller promises.
        unsafe { give_until(until_out, until) };
        Ok(())
    })
}

/// Makes the kept roam that `roam` names (a feature, or a token) last
/// `days` days from today, within the same limits as a new roam; keeps its
/// new token. Stores when it now ends in `*until_out` unless NULL.
///
/// # Safety
/// As for floatd_roam.
#[no_mangle]
pub unsafe extern "C" fn floatd_roam_extend(
    client: *mut floatd_client,
    roam: *const c_char,
    days: u32,
    store_dir: *const c_char,
    until_out: *mut u64,
) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client; NULL or C strings.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        let roam = unsafe { text(roam, "roam") }?;
        let dir = unsafe { optional_text(store_dir, "store_dir") }?;
        let until = client.inner.extend_roam(roam, days, dir)?;
        // SAFETY: as the caller promises.
        unsafe { give_until(until_out, until) };
        Ok(())
    })
}

/// Hands the kept roams that `roam` names (a feature, or a token; NULL:
/// every one) back to the server early, and forgets their tokens.
///
/// # Safety
/// `client` is NULL or a live client; `roam` and `store_dir` NULL or C
/// strings.
#[no_mangle]
pub unsafe extern "C" fn floatd_roam_return(
    client: *mut floatd_client,
    roam: *const c_char,
    store_dir: *const c_char,
) -> i32 {
    run(|| {
        // SAFETY: NULL or a live client; NULL or C strings.
        let client = unsafe { client.as_ref() }.ok_or_else(|| null("client"))?;
        let roam = unsafe { optional_text(roam, "roam") }?;
        let dir = unsafe { optional_text(store_dir, "store_dir") }?;
        client.inner.return_roams(roam, dir)
    })
}

/// Offline, without a client: FLOATD_OK when a roam token kept in
/// `store_dir` lets `count` seats of `feature` at `version` (NULL or "":
/// any) run on this machine now, signed by the key pinned for its server
/// pair; else FLOATD_E_NO_ROAM (floatd_last_error says why). Stores when
/// that roam ends in `*until_out` unless NULL.
///
/// # Safety
/// The strings NULL or C strings; `until_out` NULL or writable storage
/// for a uint64_t.
#[no_mangle]
pub unsafe extern "C" fn floatd_roam_check(
    feature: *const c_char,
    version: *const c_char,
    count: u32,
    store_dir: *const c_char,
    until_out: *mut u64,
) -> i32 {
    run(|| {
        // SAFETY: NULL or C strings.
        let feature = unsafe { text(feature, "feature") }?;
        let version = unsafe { optional_text(version, "version") }?;
        let dir = unsafe { optional_text(store_dir, "store_dir") }?;
        let until = crate::roam::roam_check(feature, version, count, dir)?;
        // SAFETY: as the caller promises.
        unsafe { give_until(until_out, until) };
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::FLOATD_E_BAD_ARGUMENT;

    #[test]
    fn null_pointers_are_refused_with_a_message() {
        assert_eq!(
            unsafe { floatd_client_new(c"a:1".as_ptr(), std::ptr::null(), std::ptr::null_mut()) },
            FLOATD_E_BAD_ARGUMENT
        );
        let said = unsafe { CStr::from_ptr(floatd_last_error()) };
        assert_eq!(said.to_str().unwrap(), "client_out is NULL");
        let mut seat = std::ptr::dangling_mut::<floatd_seat>();
        let code = unsafe {
            floatd_checkout(
                std::ptr::null_mut(),
                c"cad".as_ptr(),
                std::ptr::null(),
                1,
                0,
                &mut seat,
            )
        };
        assert_eq!(code, FLOATD_E_BAD_ARGUMENT);
        assert!(seat.is_null(), "the out pointer is cleared");
        assert_eq!(
            unsafe { floatd_checkin(std::ptr::null_mut()) },
            FLOATD_E_BAD_ARGUMENT
        );
        assert_eq!(
            unsafe { floatd_seat_state(std::ptr::null()) },
            FLOATD_E_BAD_ARGUMENT
        );
        assert_eq!(unsafe { floatd_seat_id(std::ptr::null()) }, 0);
        assert_eq!(
            unsafe { floatd_client_free(std::ptr::null_mut()) },
            FLOATD_OK
        );
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let code = run(|| panic!("boom"));
        assert_eq!(code, FLOATD_E_INTERNAL);
        let said = unsafe { CStr::from_ptr(floatd_last_error()) };
        assert_eq!(said.to_str().unwrap(), "internal error: boom");
    }
}
