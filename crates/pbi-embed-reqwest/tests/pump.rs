//! The driver stays a pump: it converts between the core's flow and one HTTP stack, and
//! the call's logic lives in the core (what both drivers need besides HTTP is in
//! pbi-embed-local).

#[test]
fn the_driver_is_at_most_300_code_lines() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lines = pbi_embed_testkit::code_lines(&src);
    assert!(
        lines <= 300,
        "{lines} code lines: move logic into the core or pbi-embed-local"
    );
}
