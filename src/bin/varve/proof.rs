//! `varve root`, `varve prove` and `varve verify-proof`: the log's Merkle
//! root, proofs a third party can check, and checking them without the log.
//!
//! Roots, proofs and checkpoints travel as hex of their binary forms
//! (`Root::to_bytes`, `InclusionProof::to_bytes`, …); `prove` prints one JSON
//! object holding the proof, the root it is for and the record itself, which
//! is what `verify-proof` reads.

use std::io::{Read, Write};
use std::path::PathBuf;

use base64::Engine as _;
use serde_derive::{Deserialize, Serialize};
use varvelog::{leaf_hash, verify_consistency, verify_inclusion, ConsistencyProof, InclusionProof, Root};

use crate::util::{handle_write, open_log, CmdResult, Failure};

/// Arguments of `varve root`.
#[derive(clap::Args, Debug)]
pub struct RootArgs {
    /// The log directory (or the URL of a tiered log).
    pub dir: PathBuf,
    /// The root over the first SIZE records instead of all of them.
    #[arg(long, value_name = "SIZE")]
    pub at: Option<u64>,
    /// List the checkpoints recorded in the log (Log::checkpoint) instead.
    #[arg(long, conflicts_with = "at")]
    pub checkpoints: bool,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `varve prove`.
#[derive(clap::Args, Debug)]
pub struct ProveArgs {
    /// The log directory (or the URL of a tiered log).
    pub dir: PathBuf,
    /// The record to prove is in the log.
    #[arg(required_unless_present = "consistency")]
    pub seq: Option<u64>,
    /// Instead: prove that the log extends its first OLD records.
    #[arg(long, value_name = "OLD", conflicts_with = "seq")]
    pub consistency: Option<u64>,
}

/// Arguments of `varve verify-proof`.
#[derive(clap::Args, Debug)]
pub struct VerifyProofArgs {
    /// The proof as `varve prove` prints it (`-` or nothing: standard input).
    pub file: Option<PathBuf>,
    /// The root you trust (hex, as `varve root` prints it): the one the proof
    /// must lead to. The root inside the proof file is not trusted.
    #[arg(long, value_name = "HEX")]
    pub root: String,
    /// For a consistency proof: the earlier root you trust.
    #[arg(long, value_name = "HEX")]
    pub old_root: Option<String>,
}

/// What `prove` prints and `verify-proof` reads.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ProofFile {
    Inclusion { root: String, proof: String, record: RecordJson },
    Consistency { old_root: String, root: String, proof: String },
}

#[derive(Serialize, Deserialize)]
struct RecordJson {
    seq: u64,
    timestamp_us: u64,
    tombstone: bool,
    key_base64: Option<String>,
    payload_base64: String,
}

#[derive(Serialize)]
struct RootJson {
    size: u64,
    hash: String,
    root: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_us: Option<u64>,
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, Failure> {
    hex::decode(s.trim()).map_err(|e| Failure::usage(format!("{what}: not hex: {e}")))
}

pub fn root(args: &RootArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let roots: Vec<(Root, Option<u64>)> = if args.checkpoints {
        log.checkpoints()?.into_iter().map(|c| (c.root, Some(c.time_us))).collect()
    } else {
        let snap = log.snapshot();
        vec![(args.at.map_or_else(|| snap.root(), |at| snap.root_at(at))?, None)]
    };
    let mut out = std::io::stdout().lock();
    for (r, time_us) in roots {
        let line = if args.json {
            let j = RootJson { size: r.size, hash: hex(&r.hash), root: hex(&r.to_bytes()), time_us };
            serde_json::to_string(&j).map_err(|e| Failure::problem(e.to_string()))?
        } else {
            let when = time_us.map(|t| format!(" at {}", crate::util::format_time(t))).unwrap_or_default();
            format!("{}  ({} records{when}; root hash {})", hex(&r.to_bytes()), r.size, hex(&r.hash))
        };
        handle_write(writeln!(out, "{line}"))?;
    }
    Ok(())
}

pub fn prove(args: &ProveArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let root = snap.root()?;
    let file = match (args.seq, args.consistency) {
        (_, Some(old)) => {
            let proof = snap.prove_consistency(old, root.size)?;
            ProofFile::Consistency {
                old_root: hex(&snap.root_at(old)?.to_bytes()),
                root: hex(&root.to_bytes()),
                proof: hex(&proof.to_bytes()),
            }
        }
        (Some(seq), None) => {
            let proof = snap.prove_inclusion(seq)?;
            let r = snap.get(seq)?.ok_or_else(|| Failure::problem(format!("record {seq} is not in the log")))?;
            let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
            let record = RecordJson {
                seq,
                timestamp_us: r.timestamp(),
                tombstone: r.is_tombstone(),
                key_base64: r.key().map(b64),
                payload_base64: b64(r.payload()),
            };
            ProofFile::Inclusion { root: hex(&root.to_bytes()), proof: hex(&proof.to_bytes()), record }
        }
        (None, None) => return Err(Failure::usage("give SEQ or --consistency OLD")),
    };
    let json = serde_json::to_string(&file).map_err(|e| Failure::problem(e.to_string()))?;
    handle_write(writeln!(std::io::stdout().lock(), "{json}"))
}

pub fn verify_proof(args: &VerifyProofArgs) -> CmdResult {
    let mut text = String::new();
    match args.file.as_deref() {
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        Some(p) => std::fs::read_to_string(p).map(|t| text = t),
    }
    .map_err(|e| Failure::usage(format!("reading the proof: {e}")))?;
    let file: ProofFile = serde_json::from_str(&text).map_err(|e| Failure::usage(format!("not a proof from varve prove: {e}")))?;
    let trusted = Root::from_bytes(&unhex("--root", &args.root)?).map_err(|e| Failure::usage(format!("--root: {e}")))?;
    let (ok, what) = match file {
        ProofFile::Inclusion { proof, record, .. } => {
            let proof = InclusionProof::from_bytes(&unhex("proof", &proof)?).map_err(|e| Failure::usage(e.to_string()))?;
            let b64 = |s: &str| {
                base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| Failure::usage(format!("record: bad base64: {e}")))
            };
            let key = record.key_base64.as_deref().map(b64).transpose()?.unwrap_or_default();
            let leaf = leaf_hash(record.seq, record.timestamp_us, record.tombstone, &key, &b64(&record.payload_base64)?);
            let ok = proof.seq == record.seq && verify_inclusion(&trusted, &leaf, &proof);
            (ok, format!("record {} in the log of {} records", record.seq, trusted.size))
        }
        ProofFile::Consistency { proof, .. } => {
            let old = args.old_root.as_deref().ok_or_else(|| Failure::usage("a consistency proof needs --old-root"))?;
            let old = Root::from_bytes(&unhex("--old-root", old)?).map_err(|e| Failure::usage(format!("--old-root: {e}")))?;
            let proof = ConsistencyProof::from_bytes(&unhex("proof", &proof)?).map_err(|e| Failure::usage(e.to_string()))?;
            (verify_consistency(&old, &trusted, &proof), format!("the log of {} records extends the log of {}", trusted.size, old.size))
        }
    };
    if !ok {
        return Err(Failure::problem(format!("proof does not verify: {what} is NOT proven")));
    }
    handle_write(writeln!(std::io::stdout().lock(), "ok: {what}"))
}
