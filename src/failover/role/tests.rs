//! The role machine on its own: inputs in, actions out, time passed in.
