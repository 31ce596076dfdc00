//! The READMEs' broker configurations are ones that read.

use pbi_embed_server::Config;

#[test]
fn every_broker_configuration_in_the_readmes_reads() {
    for (name, text) in [
        ("README.md", include_str!("../../../README.md")),
        ("crates/pbi-embed-server/README.md", include_str!("../README.md")),
    ] {
        let blocks: Vec<&str> = text
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split("\n```").next())
            .filter(|block| block.contains("[[customers]]"))
            .collect();
        assert!(!blocks.is_empty(), "{name} shows a configuration");
        for block in blocks {
            Config::parse(name, block).unwrap_or_else(|e| panic!("{e}\n{block}"));
        }
    }
}
