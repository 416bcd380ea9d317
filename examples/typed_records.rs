//! Typed records: fixed-layout structs appended as their bytes and read back
//! in place (no copy, no parsing), and serde values through a codec.
//!
//! `cargo run --release --example typed_records`
//! `cargo run --release --example typed_records --features serde`  (adds the serde part)

use std::time::Instant;

use varvelog::{Log, Options};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// A trade as it sits on disk: little-endian on every platform this runs
/// on, 8-byte aligned fields, no padding (zerocopy's derives check that).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
struct Trade {
    instrument: u32,
    side: u32, // 0 buy, 1 sell
    price_nanos: i64,
    quantity: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = Log::open(dir.path(), Options::new())?;
    let mut writer = log.writer()?;

    let n = 1_000_000u64;
    let started = Instant::now();
    for i in 0..n {
        let trade = Trade {
            instrument: (i % 16) as u32,
            side: (i % 2) as u32,
            price_nanos: 100_000_000_000 + (i % 1000) as i64,
            quantity: 1 + i % 7,
        };
        writer.append_value(&trade)?;
    }
    let appended = started.elapsed();

    // Read back in place: `payload_as` checks size and alignment and hands
    // out a reference into the mapping.
    let snap = log.snapshot();
    let started = Instant::now();
    let (mut notional, mut volume) = (0i128, 0u64);
    for record in snap.iter() {
        let trade: &Trade = record?.payload_as()?;
        if trade.instrument == 3 {
            notional += i128::from(trade.price_nanos) * i128::from(trade.quantity);
            volume += trade.quantity;
        }
    }
    let scanned = started.elapsed();
    println!(
        "{n} trades: appended in {appended:.2?} ({:.1} M/s), scanned in {scanned:.2?} ({:.1} M/s)",
        n as f64 / appended.as_secs_f64() / 1e6,
        n as f64 / scanned.as_secs_f64() / 1e6
    );
    println!("instrument 3: volume {volume}, VWAP {:.6}", notional as f64 / volume as f64 / 1e9);

    // A payload of the wrong size is a typed error, not a panic.
    let seq = writer.append(b"not a trade")?;
    match log.snapshot().get(seq)?.expect("just written").payload_as::<Trade>() {
        Err(e) => println!("as expected: {e}"),
        Ok(t) => println!("unexpected: {t:?}"),
    }

    serde_part(&log, &mut writer)?;
    Ok(())
}

#[cfg(feature = "serde")]
fn serde_part(log: &Log, writer: &mut varvelog::Writer) -> varvelog::Result<()> {
    use varvelog::Json;
    let seq = writer.append_serde_with(&Json, &("order-17", 250u32, "limit"), b"order-17", None)?;
    let snap = log.snapshot();
    let record = snap.get(seq)?.expect("just written");
    let (id, qty, kind): (&str, u32, &str) = record.decode(&Json)?; // strings borrow the mapping
    println!("serde (JSON): {id} {qty} {kind}, stored as {}", String::from_utf8_lossy(record.payload()));
    Ok(())
}

#[cfg(not(feature = "serde"))]
fn serde_part(_: &Log, _: &mut varvelog::Writer) -> varvelog::Result<()> {
    println!("(run with --features serde for the serde codec part)");
    Ok(())
}
