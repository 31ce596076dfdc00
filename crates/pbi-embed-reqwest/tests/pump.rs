//! The driver stays a pump: it converts between the core's flow and one HTTP stack, and
//! the call's logic lives in the core (what both drivers need besides HTTP is in
//! pbi-embed-local).

#[test]
fn the_driver_is_at_most_300_code_lines() {
    pbi_embed_testkit::assert_driver_is_a_pump(env!("CARGO_MANIFEST_DIR"));
}
