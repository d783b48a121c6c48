//! Runnable examples of Bond; see each file's header for how to run it.
