//! Typed records: payloads viewed in place as `zerocopy` types, and (with
//! the `serde` feature) serde values through a `Codec`.
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
use crate::record::Record;
use crate::writer::{Entry, Writer};

impl<'a> Record<'a> {
    /// The payload viewed in place as a `T` (or a slice `[T]`), without
    /// copying: the reference borrows the mapping, like [`Record::payload`].
    ///
    /// [`Error::PayloadLayout`] if the payload's length does not fit `T`
    /// (for a slice, is not a multiple of the element size) or its address is
    /// not aligned for `T` (never the case for alignments up to 8; see the
    /// [module documentation](crate::typed)).
    ///
    /// # Errors
    ///
    /// See above.
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
    ///
    /// # Errors
    ///
    /// As [`Writer::append`].
    pub fn append_value<T>(&mut self, value: &T) -> Result<u64>
    where
        T: IntoBytes + Immutable + ?Sized,
    {
        self.append(value.as_bytes())
    }
}

#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use self::codec::{Codec, Json};

#[cfg(feature = "serde")]
mod codec {
    use std::cell::RefCell;

    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::record::Record;
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
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
    pub trait Codec {
        /// Appends the encoding of `value` to `out`.
        ///
        /// # Errors
        ///
        /// [`Error::Codec`] if the value cannot be encoded.
        fn encode<T: Serialize + ?Sized>(&self, value: &T, out: &mut Vec<u8>) -> Result<()>;
        /// Decodes a value from `bytes`, which may borrow from them.
        ///
        /// # Errors
        ///
        /// [`Error::Codec`] if the bytes are not a valid encoding of `T`.
        fn decode<'de, T: Deserialize<'de>>(&self, bytes: &'de [u8]) -> Result<T>;
    }

    /// JSON through `serde_json`: readable by `varve dump` and every tool.
    #[derive(Clone, Copy, Debug, Default)]
    #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
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
        ///
        /// # Errors
        ///
        /// [`Error::Codec`] if encoding fails; otherwise as [`Writer::append`].
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        pub fn append_serde<C: Codec, T: Serialize + ?Sized>(&mut self, codec: &C, value: &T) -> Result<u64> {
            self.append_serde_with(codec, value, b"", None)
        }

        /// Encodes `value` with `codec` and appends it with `key` (empty: no
        /// key) and a timestamp (`None`: now); returns its seq.
        ///
        /// # Errors
        ///
        /// [`Error::Codec`] if encoding fails; otherwise as [`Writer::append_entry`].
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
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
        ///
        /// # Errors
        ///
        /// [`Error::Codec`] if the payload is not a valid encoding of `T`.
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        pub fn decode<C: Codec, T: Deserialize<'a>>(&self, codec: &C) -> Result<T> {
            codec.decode(self.payload())
        }
    }
}

#[cfg(test)]
mod tests {
    use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

    use crate::{Entry, Error, Log, Options};

    #[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, PartialEq, Clone, Copy)]
    #[repr(C)]
    struct Point {
        x: u64,
        y: i32,
        z: f32,
    }

    #[derive(FromBytes, KnownLayout, Immutable, Debug)]
    #[repr(C, align(16))]
    struct Wide([u8; 16]);

    #[test]
    fn payloads_are_viewed_in_place_whatever_the_neighbouring_record_sizes() {
        // Goal: the frame layout keeps every payload 8-byte aligned, so types
        // of alignment up to 8 always view in place. Method: records of every
        // length 0..64 with and without keys between typed records; view each
        // typed one and check it points into the mapping (no copy).
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new().segment_bytes(64 * 1024)).unwrap();
        let mut w = log.writer().unwrap();
        let mut typed = Vec::new();
        for n in 0..64u64 {
            let filler = vec![1u8; n as usize];
            w.append_entry(Entry::new(&filler).key(&filler[..(n % 5) as usize])).unwrap();
            let p = Point { x: n, y: -(n as i32), z: n as f32 / 2.0 };
            typed.push((w.append_value(&p).unwrap(), p));
            let many = [n, n + 1, n + 2];
            typed.push((w.append_entry(Entry::from_value(&many[..])).unwrap(), Point { x: n, y: 3, z: 0.0 }));
        }
        let snap = log.snapshot();
        for (seq, want) in typed {
            let rec = snap.get(seq).unwrap().unwrap();
            if want.y == 3 {
                let xs: &[u64] = rec.payload_as().unwrap();
                assert_eq!(xs, &[want.x, want.x + 1, want.x + 2]);
            } else {
                let p: &Point = rec.payload_as().unwrap();
                assert_eq!(*p, want);
                assert_eq!(p as *const Point as *const u8, rec.payload().as_ptr(), "a view, not a copy");
            }
        }
    }

    #[test]
    fn wrong_size_and_misalignment_are_typed_errors() {
        // Goal: a payload that does not fit the type is an error naming the
        // reason, never a panic or a misaligned reference. Method: a short
        // payload as Point (size), a 12-byte payload as [u64] (size), and a
        // 16-aligned type over payloads that are only 8-aligned (alignment).
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new()).unwrap();
        let mut w = log.writer().unwrap();
        let short = w.append(&[0u8; 7]).unwrap();
        let twelve = w.append(&[0u8; 12]).unwrap();
        let wides: Vec<u64> = (0..4).map(|_| w.append(&[0u8; 16]).unwrap()).collect();
        let snap = log.snapshot();
        let err = snap.get(short).unwrap().unwrap().payload_as::<Point>().unwrap_err();
        assert!(matches!(err, Error::PayloadLayout { len: 7, reason, .. } if reason.contains("length")), "{err}");
        assert!(err.to_string().contains("Point"), "{err}");
        assert!(matches!(snap.get(twelve).unwrap().unwrap().payload_as::<[u64]>(), Err(Error::PayloadLayout { len: 12, .. })));
        let mut misaligned = 0;
        for seq in wides {
            let rec = snap.get(seq).unwrap().unwrap();
            match rec.payload_as::<Wide>() {
                Ok(v) => assert_eq!(v as *const Wide as usize % 16, 0),
                Err(Error::PayloadLayout { reason, .. }) => {
                    assert!(reason.contains("aligned"));
                    misaligned += 1;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        // 48-byte frames: consecutive payloads alternate between 16-aligned and not.
        assert!(misaligned >= 1);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_values_round_trip_through_the_json_codec() {
        // Goal: append_serde / decode round-trip values (borrowing strings
        // from the mapping), keys and timestamps are kept, and a payload that
        // is not the type is a Codec error.
        use crate::Json;
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new()).unwrap();
        let mut w = log.writer().unwrap();
        let a = w.append_serde(&Json, &("first", 1u32, vec![1.5f64, -2.0])).unwrap();
        let b = w.append_serde_with(&Json, &std::collections::BTreeMap::from([("k", "v")]), b"key", Some(42)).unwrap();
        let bad = w.append(b"\xff not json").unwrap();
        let snap = log.snapshot();
        let ra = snap.get(a).unwrap().unwrap();
        let (s, n, v): (&str, u32, Vec<f64>) = ra.decode(&Json).unwrap();
        assert_eq!((s, n, v), ("first", 1, vec![1.5, -2.0]));
        assert!(std::ptr::eq(s.as_ptr(), ra.payload()[2..].as_ptr()), "&str borrows the mapping");
        let rb = snap.get(b).unwrap().unwrap();
        assert_eq!((rb.key(), rb.timestamp()), (Some(&b"key"[..]), 42));
        let m: std::collections::BTreeMap<String, String> = rb.decode(&Json).unwrap();
        assert_eq!(m["k"], "v");
        let err = snap.get(bad).unwrap().unwrap().decode::<_, u32>(&Json).unwrap_err();
        assert!(matches!(err, Error::Codec { type_name: "u32", .. }), "{err}");
    }
}
