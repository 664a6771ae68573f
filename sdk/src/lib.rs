//! libfloatd_client: the floatd client library for applications written
//! in C, C++ or anything that calls C (Python's ctypes, .NET P/Invoke,
//! Java's FFM), with the header `floatd_client.h`.
//!
//! It wraps [`floatd::client`]: a client keeps a list of servers, a
//! heartbeat thread of its own, and fails over and reclaims its seats by
//! itself. docs/SDK.md is the guide and the reference.
//!
//! - [`codes`]: result codes, seat states, event kinds.
//! - [`options`]: the server list and options string of a new client.
//! - [`model`]: clients, seats and events in safe Rust.
//! - [`roam`]: roaming (seats taken away offline for days) in safe Rust.
//! - `ffi`: the exported C functions, the only unsafe code in floatd.
#![deny(unsafe_code)]

pub mod codes;
mod ffi;
pub mod model;
pub mod options;
pub mod roam;

pub use ffi::*;

/// [`floatd::VERSION`] as a C string.
pub(crate) const VERSION_C: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
) {
    Ok(version) => version,
    Err(_) => panic!("the version holds a NUL"),
};

#[cfg(test)]
mod tests {
    #[test]
    fn the_sdk_has_the_version_of_floatd() {
        assert_eq!(super::VERSION_C.to_str().unwrap(), floatd::VERSION);
    }
}
