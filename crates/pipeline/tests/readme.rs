//! The README's library excerpt is `examples/quickstart.rs`, whole: the block under "Use it as a
//! library" must equal the file from its first `use` to its end, so the README never shows code
//! that does not compile (the example is built by `cargo test`, and run by CI).

#[test]
fn the_readme_shows_the_quickstart_as_it_compiles() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/quickstart.rs")).unwrap();
    let code = &example[example.find("use scorelab_pipeline::prelude::*;").unwrap()..];
    let section = &readme[readme.find("## Use it as a library").unwrap()..];
    let start = section.find("```rust\n").unwrap() + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```\n").unwrap()];
    assert_eq!(
        block, code,
        "README's excerpt differs from examples/quickstart.rs"
    );
    let main = &code[code.find("fn main()").unwrap()..];
    assert!(
        main.lines().count() <= 15,
        "main is {} lines",
        main.lines().count()
    );
    assert!(!code.contains("unreachable!") && !code.contains(".into()"));
}
