//! Guides that are longer than one item's documentation: the same pages as
//! `docs/` in the repository, rendered here so that they are at hand on
//! docs.rs. The byte-level format is in [`crate::format`](mod@crate::format).

#[doc = "[format.md]: mod@crate::format\n"]
#[doc = include_str!("../docs/multi_process.md")]
pub mod multi_process {}
