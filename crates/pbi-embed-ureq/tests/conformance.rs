//! The conformance table, through the blocking client over real loopback sockets.

mod common;

pbi_embed_testkit::conformance_tests!(common::Ureq);

#[test]
fn soak() {
    pbi_embed_testkit::conformance::soak(&common::Ureq);
}
