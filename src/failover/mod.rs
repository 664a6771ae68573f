//! failover (filled in by its issue).
