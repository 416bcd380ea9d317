//! Typed records: payloads viewed in place as `zerocopy` types, and (with
//! the `serde` feature) serde values through a [`Codec`].
//!
//! # Alignment
//!
//! Segments are mapped at page boundaries, frames start on 8-byte
//! boundaries and a frame header is 32 bytes, so every payload starts
//! 8-byte aligned in memory. A type whose alignment is at most 8 (every
//! primitive up to `u64`/`f64`, and structs of them) can therefore always be
//! viewed in place; [`Record::payload_as`] still checks alignment and size
//! and returns [`Error::PayloadLayout`] instead of ever forming a misaligned
//! reference.
//!
//! ```
//! use varvelog::{Log, Options};
//! use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
//!
//! #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq)]
//! #[repr(C)]
//! struct Tick {
//!     instrument: u32,
//!     side: u32,
//!     price_nanos: i64,
//!     quantity: u64,
//! }
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), Options::new())?;
//! let mut writer = log.writer()?;
//! let seq = writer.append_value(&Tick { instrument: 7, side: 1, price_nanos: 101_250_000_000, quantity: 300 })?;
//!
//! let snap = log.snapshot();
//! let record = snap.get(seq)?.expect("just written");
//! let tick: &Tick = record.payload_as()?; // no copy: points into the mapping
//! assert_eq!(tick.quantity, 300);
//! assert!(record.payload_as::<[u8; 3]>().is_err()); // wrong size: a typed error
//! # Ok::<(), varvelog::Error>(())
//! ```

use zerocopy::{ConvertError, FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{Error, Result};
use crate::snapshot::Record;
use crate::writer::{Entry, Writer};

impl<'a> Record<'a> {
    /// The payload viewed in place as a `T` (or a slice `[T]`), without
    /// copying: the reference borrows the mapping, like [`Record::payload`].
    ///
    /// [`Error::PayloadLayout`] if the payload's length does not fit `T`
    /// (for a slice, is not a multiple of the element size) or its address is
    /// not aligned for `T` (never the case for alignments up to 8; see the
    /// [module documentation](crate::typed)).
    pub fn payload_as<T>(&self) -> Result<&'a T>
    where
        T: FromBytes + KnownLayout + Immutable + ?Sized,
    {
        let payload = self.payload();
        T::ref_from_bytes(payload).map_err(|e| {
            let reason = match e {
                ConvertError::Alignment(_) => "payload is not aligned for the type",
                ConvertError::Size(_) => "payload length does not match the type's size",
                ConvertError::Validity(never) => match never {},
            };
            Error::PayloadLayout { type_name: std::any::type_name::<T>(), len: payload.len(), reason }
        })
    }
}

impl<'a> Entry<'a> {
    /// An entry whose payload is the bytes of `value` (no key, current time).
    pub fn from_value<T>(value: &'a T) -> Self
    where
        T: IntoBytes + Immutable + ?Sized,
    {
        Entry::new(value.as_bytes())
    }
}

impl Writer {
    /// Appends the bytes of `value` as the payload; read it back in place
    /// with [`Record::payload_as`]. Returns its seq.
    pub fn append_value<T>(&mut self, value: &T) -> Result<u64>
    where
        T: IntoBytes + Immutable + ?Sized,
    {
        self.append(value.as_bytes())
    }
}

#[cfg(feature = "serde")]
pub use self::codec::{Codec, Json};

#[cfg(feature = "serde")]
mod codec {
    use std::cell::RefCell;

    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::snapshot::Record;
    use crate::writer::{Entry, Writer};

    /// Turns serde values into payload bytes and back (feature `serde`).
    ///
    /// [`Json`] is built in; implement this for any other format (bincode,
    /// postcard, MessagePack …) in a few lines.
    ///
    /// ```
    /// use varvelog::{Json, Log, Options};
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let log = Log::open(dir.path(), Options::new())?;
    /// let mut writer = log.writer()?;
    /// let seq = writer.append_serde(&Json, &("order-17", 250u32))?;
    ///
    /// let snap = log.snapshot();
    /// let (id, qty): (String, u32) = snap.get(seq)?.unwrap().decode(&Json)?;
    /// assert_eq!((id.as_str(), qty), ("order-17", 250));
    /// # Ok::<(), varvelog::Error>(())
    /// ```
    pub trait Codec {
        /// Appends the encoding of `value` to `out`.
        fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()>;
        /// Decodes a value from `bytes`, which may borrow from them.
        fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T>;
    }

    /// JSON through `serde_json`: readable by `varve dump` and every tool.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Json;

    impl Codec for Json {
        fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()> {
            serde_json::to_writer(out, value).map_err(|e| Error::Codec { type_name: std::any::type_name::<T>(), message: e.to_string() })
        }

        fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T> {
            serde_json::from_slice(bytes).map_err(|e| Error::Codec { type_name: std::any::type_name::<T>(), message: e.to_string() })
        }
    }

    thread_local! {
        /// Encoding buffer reused across appends on this thread.
        static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    impl Writer {
        /// Encodes `value` with `codec` and appends it; returns its seq.
        pub fn append_serde<C: Codec, T: Serialize + ?Sized>(&mut self, codec: &C, value: &T) -> Result<u64> {
            self.append_serde_with(codec, value, b"", None)
        }

        /// Encodes `value` with `codec` and appends it with `key` (empty: no
        /// key) and a timestamp (`None`: now); returns its seq.
        pub fn append_serde_with<C, T>(&mut self, codec: &C, value: &T, key: &[u8], timestamp_us: Option<u64>) -> Result<u64>
        where
            C: Codec,
            T: Serialize + ?Sized,
        {
            BUF.with(|buf| {
                // A reentrant call (a codec that appends) gets its own buffer.
                let mut own = Vec::new();
                let mut guard = buf.try_borrow_mut().ok();
                let out = guard.as_deref_mut().unwrap_or(&mut own);
                out.clear();
                codec.encode(value, out)?;
                let mut entry = Entry::new(out).key(key);
                if let Some(ts) = timestamp_us {
                    entry = entry.timestamp(ts);
                }
                self.append_entry(entry)
            })
        }
    }

    impl<'a> Record<'a> {
        /// Decodes the payload with `codec`. The value may borrow from the
        /// mapping (e.g. `&str` fields with [`Json`]).
        pub fn decode<C: Codec, T: Deserialize<'a>>(&self, codec: &C) -> Result<T> {
            codec.decode(self.payload())
        }
    }
}
