//! `varve get DIR KEY`: the newest record with a key, or (with `--all`)
//! every record with it. Read-only, like `dump`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use base64::Engine as _;

use crate::util::{handle_write, open_log, print_records, text_or_hex, warnings_failure, write_record, CmdResult, Failure, Format};

/// How KEY is written on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyEncoding {
    /// The key is the text as given.
    Utf8,
    /// Base64, standard alphabet: as JSON output shows a binary key.
    Base64,
    /// Hex digits, with or without a leading `0x`: as text output shows a
    /// binary key.
    Hex,
}

/// Arguments of `varve get`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// The key, as text (see --key-encoding for binary keys).
    pub key: String,
    /// How KEY is written.
    #[arg(long, value_enum, value_name = "ENCODING", default_value_t = KeyEncoding::Utf8)]
    pub key_encoding: KeyEncoding,
    /// Print every record with the key, newest first, tombstones included
    /// (marked as such). Exit status 1 only if no record has the key.
    #[arg(long)]
    pub all: bool,
    /// With --all: oldest first.
    #[arg(long, requires = "all")]
    pub oldest_first: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// The bytes of `key` written in `encoding`.
fn decode_key(key: &str, encoding: KeyEncoding) -> Result<Vec<u8>, String> {
    match encoding {
        KeyEncoding::Utf8 => Ok(key.as_bytes().to_vec()),
        KeyEncoding::Base64 => {
            base64::engine::general_purpose::STANDARD.decode(key.trim()).map_err(|e| format!("key {key:?}: bad base64: {e}"))
        }
        KeyEncoding::Hex => {
            let digits = key.trim();
            let digits = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")).unwrap_or(digits);
            if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("key {key:?}: not hex (an even number of digits 0-9, a-f, optionally after 0x)"));
            }
            Ok((0..digits.len()).step_by(2).map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap_or(0)).collect())
        }
    }
}

pub fn run(args: &GetArgs) -> CmdResult {
    let key = decode_key(&args.key, args.key_encoding).map_err(Failure::usage)?;
    if key.is_empty() {
        return Err(Failure::usage("the key is empty: the engine stores an empty key as no key, so no record can be found by it"));
    }
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let shown = text_or_hex(&key);
    if args.all {
        let printed = if args.oldest_first {
            print_records(&mut out, snap.iter_key(&key).rev(), args.format)
        } else {
            print_records(&mut out, snap.iter_key(&key), args.format)
        };
        handle_write(out.flush())?;
        let printed = printed?;
        warnings_failure(&log)?;
        if printed == 0 {
            return Err(Failure::problem(format!("no record with key {shown} in {}", args.dir.display())));
        }
        return Ok(());
    }
    let newest = snap.iter_key(&key).next().transpose()?;
    match newest {
        Some(r) if !r.is_tombstone() => {
            handle_write(write_record(&mut out, &r, args.format))?;
            handle_write(out.flush())?;
            warnings_failure(&log)
        }
        newest => {
            // Records missing from the log may be why the key is not found:
            // that is the problem to report.
            warnings_failure(&log)?;
            let why = newest.map(|t| format!(": its newest record, seq {}, is a tombstone", t.seq())).unwrap_or_default();
            Err(Failure::problem(format!("no live record with key {shown} in {}{why}", args.dir.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_from_text_base64_and_hex() {
        // Goal: each documented way of writing a key gives the same bytes,
        // and a malformed one is a message.
        assert_eq!(decode_key("user-0", KeyEncoding::Utf8).unwrap(), b"user-0");
        assert_eq!(decode_key("/w==", KeyEncoding::Base64).unwrap(), [0xff]);
        assert_eq!(decode_key("0xffAD", KeyEncoding::Hex).unwrap(), [0xff, 0xad]);
        assert_eq!(decode_key("757365722d30", KeyEncoding::Hex).unwrap(), b"user-0");
        assert!(decode_key("abc", KeyEncoding::Hex).unwrap_err().contains("not hex"));
        assert!(decode_key("zz", KeyEncoding::Hex).unwrap_err().contains("not hex"));
        assert!(decode_key("%%", KeyEncoding::Base64).unwrap_err().contains("bad base64"));
    }
}
