//! The web app (`examples/web_app.rs`) and the token service (`src/bin/token_service.rs`)
//! live here; this library holds no code. It compiles the workspace README's snippets as
//! doctests, so that they cannot rot.
#![doc = include_str!("../../../README.md")]
