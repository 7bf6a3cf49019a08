//! The demo workspace: a deterministic generator and a live simulator.
