//! The README's Rust code is real code: every `rust` block is, byte for
//! byte, one of the programs in `examples/` (which `cargo test` builds), and
//! none hides lines from the reader with rustdoc's `# ` prefix.

use std::path::Path;

/// The bodies of the README's fenced code blocks whose info string starts
/// with `rust`.
fn rust_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) if info.trim().starts_with("rust") => current = Some(String::new()),
            (None, Some(_)) => current = Some(String::from("\u{0}not rust")),
            (Some(_), Some(_)) => {
                let body = current.take().unwrap_or_default();
                if !body.starts_with('\u{0}') {
                    blocks.push(body);
                }
            }
            (Some(body), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code block");
    blocks
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_readme_rust_block_is_an_example_program_verbatim() {
    // Goal: the README cannot drift from code that compiles. Method: each
    // rust block must equal the whole text of a file in examples/.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let blocks = rust_blocks(&read(&root.join("README.md")));
    assert!(!blocks.is_empty(), "README.md has no rust block");
    let examples: Vec<(String, String)> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), read(&p)))
        .collect();
    for block in &blocks {
        let first = block.lines().next().unwrap_or("");
        assert!(
            examples.iter().any(|(_, text)| text == block),
            "a README rust block (starting {first:?}) is not the text of any examples/*.rs file"
        );
    }
    let quick_start = examples.iter().find(|(name, _)| name == "quick_start.rs").expect("examples/quick_start.rs");
    assert_eq!(&blocks[0], &quick_start.1, "the README's first example is examples/quick_start.rs");
}

#[test]
fn readme_rust_blocks_hide_no_lines() {
    // Goal: what the reader sees is the whole program. Method: no line of a
    // rust block is a rustdoc hidden line (`#` alone or `# ` then code);
    // attributes (`#[`, `#!`) are visible code and allowed.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for block in rust_blocks(&read(&root.join("README.md"))) {
        for line in block.lines() {
            let t = line.trim_start();
            assert!(!(t == "#" || t.starts_with("# ")), "hidden doctest line in a README rust block: {line:?}");
        }
    }
}

#[test]
fn the_block_parser_sees_what_it_must() {
    // Goal: the checks above cannot pass by finding nothing. Method: a
    // small document with a rust block, a hidden line and a shell block.
    let doc = "text\n```rust\nfn main() {}\n# hidden\n```\n```sh\n# a comment\n```\n```rust,no_run\nlet x = 1;\n```\n";
    assert_eq!(rust_blocks(doc), vec!["fn main() {}\n# hidden\n".to_string(), "let x = 1;\n".to_string()]);
}
