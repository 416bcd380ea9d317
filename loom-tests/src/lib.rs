//! Loom models of varvelog's concurrency protocols; the models are the
//! integration tests in `tests/`, each `#![cfg(loom)]`. This library is empty.
