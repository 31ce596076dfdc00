//! What a job fetches for a plan, in which form, and what it gives back.

use crate::api::embed_token::EmbedToken;
use crate::api::metadata::{Dashboard, Dataset, GetTilesInGroup, Report, Tile};
use crate::auth::bearer::BearerToken;
use crate::flow::error::Error;

/// The form an answer takes, which also says how it is cached and shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Want {
    /// The successful response as it came (no cache); the plan parses it.
    Response,
    /// An embed token, through the embed-token cache.
    EmbedToken,
    /// Item metadata, through the metadata cache.
    Metadata(MetadataKind),
}

/// Which item's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetadataKind {
    Report,
    Dashboard,
    Tile,
    Tiles,
    Dataset,
}

impl MetadataKind {
    /// What the body is called in errors.
    pub(crate) fn output_name(self) -> &'static str {
        match self {
            Self::Report => "Report",
            Self::Dashboard => "Dashboard",
            Self::Tile => "Tile",
            Self::Tiles => "Tiles",
            Self::Dataset => "Dataset",
        }
    }

    /// Reads a successful body.
    pub(crate) fn parse(self, body: &[u8]) -> Result<Metadata, String> {
        Ok(match self {
            Self::Report => Metadata::Report(Report::from_json(body)?),
            Self::Dashboard => Metadata::Dashboard(Dashboard::from_json(body)?),
            Self::Tile => Metadata::Tile(Tile::from_json(body)?),
            Self::Tiles => Metadata::Tiles(GetTilesInGroup::parse_list(body)?),
            Self::Dataset => Metadata::Dataset(Dataset::from_json(body)?),
        })
    }
}

/// Item metadata, as the metadata cache holds it.
#[derive(Clone, Debug)]
pub(crate) enum Metadata {
    Report(Report),
    Dashboard(Dashboard),
    Tile(Tile),
    Tiles(Vec<Tile>),
    Dataset(Dataset),
}

/// The answer to a plan's need.
#[derive(Debug)]
pub(crate) enum Answer {
    Response(http::Response<Vec<u8>>),
    Token(EmbedToken),
    Metadata(Metadata),
    Bearer(BearerToken),
    /// Not in the cache (to a need that looks only there).
    NotCached,
    /// Nothing to do: a refresh another call or replica is already fetching.
    Skipped,
    /// What was to be fetched ahead is (warm-up).
    Ready,
    /// The answers to needs fetched side by side, in the order they were asked.
    All(Vec<Self>),
    Failed(Error),
}

impl Answer {
    /// The answers of side-by-side needs (one need's answer alone is its own list).
    pub(crate) fn into_list(self) -> Vec<Self> {
        match self {
            Self::All(answers) => answers,
            one => vec![one],
        }
    }
}
