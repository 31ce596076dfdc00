//! What the README's snippets, copied into an app, would send to a browser.

/// The Rust blocks of the README.
fn rust_blocks(readme: &str) -> Vec<&str> {
    readme
        .split("```rust")
        .skip(1)
        .filter_map(|block| block.split_once("```").map(|(code, _)| code))
        .collect()
}

#[test]
fn no_handler_sends_an_errors_text_to_the_browser() {
    let readme = include_str!("../../../README.md");
    let handlers: Vec<&str> = rust_blocks(readme)
        .into_iter()
        .filter(|code| code.contains("axum"))
        .collect();
    assert!(!handlers.is_empty(), "the README has an axum handler");
    for code in handlers {
        for leak in [
            "e.to_string()",
            "error.to_string()",
            "format!(\"{e}\")",
            "(StatusCode, String)",
        ] {
            assert!(!code.contains(leak), "a handler answers with {leak}:\n{code}");
        }
        assert!(
            code.contains("e.kind()"),
            "statuses follow the error's kind:\n{code}"
        );
    }
}
