//! The demo channel: simulated customers.
