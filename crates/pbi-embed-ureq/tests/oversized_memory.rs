//! 512 MiB bodies, advertised and streamed, stop at the 1 MiB cap in bounded memory. A
//! test binary of its own: it reads the process's peak resident memory.

mod common;

#[test]
fn huge_bodies_stop_at_the_cap_in_bounded_memory() {
    pbi_embed_testkit::conformance::huge_bodies_in_bounded_memory(&common::Ureq);
}
