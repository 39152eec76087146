//! The part of the lake a run is limited to: a time range, accounts and regions. Ingest prunes
//! source keys with it (`source::key`) and checks every record against it (`sink`); it is the
//! lake's notion, so neither wing imports the other for it.

/// What a run is restricted to; empty lists mean everything.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Event times, microseconds UTC: from inclusive, to exclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
}

impl Scope {
    /// True when nothing is excluded.
    pub fn is_everything(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.accounts.is_empty()
            && self.regions.is_empty()
    }
}
