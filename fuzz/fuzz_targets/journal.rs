//! Fuzz target: see floatd::fuzzing::journal. (libfuzzer-sys's entry point is
//! a #[no_mangle] function, so this file cannot forbid unsafe code; what
//! it calls is the library's, which does.)
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| floatd::fuzzing::journal(data));
