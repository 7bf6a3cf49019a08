//! The worker: channel I/O, the outbox dispatcher, the worker lease.
