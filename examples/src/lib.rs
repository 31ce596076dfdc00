//! The runnable examples of pbi-embed live in `examples/`; this library holds no code.
//! It compiles the workspace README's snippets as doctests, so that they cannot rot.
#![doc = include_str!("../../README.md")]
