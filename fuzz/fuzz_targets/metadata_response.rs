#![no_main]
//! Fuzz target: see `pbi_embed_core::__fuzz::metadata_response`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pbi_embed_core::__fuzz::metadata_response(data));
