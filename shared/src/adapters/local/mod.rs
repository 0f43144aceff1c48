//! The embedded one-machine defaults: real implementations, not test doubles.
