//! ledger (filled in by its issue).
