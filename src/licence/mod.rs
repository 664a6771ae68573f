//! Licence files: what a vendor signs and a server serves.
mod model;

pub use model::{Count, Expiry, Pool, PoolKey, Share, Version};
