//! The call list as a durable projection: one [`CallListing`] row per call.

use std::collections::HashMap;

use async_trait::async_trait;
use domain::{CallId, CallListing, GlobalPosition, RecordedEvent};
use store::EventStore;

use crate::{Projection, ProjectionError};

/// Keeps the `call_index` table in step with the log. Holds nothing in memory between
/// batches: each batch reads the rows of the calls it touches, folds the events in, and
/// writes rows and checkpoint in one transaction (compare-and-set on the checkpoint, so
/// several server nodes may each run one without applying anything twice).
#[derive(Debug, Default)]
pub struct CallIndex;

impl CallIndex {
    pub const NAME: &'static str = "call-index";
}

#[async_trait]
impl Projection for CallIndex {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn checkpoint(
        &mut self,
        store: &dyn EventStore,
    ) -> Result<GlobalPosition, ProjectionError> {
        Ok(store.load_checkpoint(Self::NAME).await?)
    }

    async fn apply(
        &mut self,
        store: &dyn EventStore,
        batch: &[RecordedEvent],
        from: GlobalPosition,
        to: GlobalPosition,
    ) -> Result<(), ProjectionError> {
        let mut ids: Vec<CallId> = batch.iter().map(|e| e.meta.call_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut rows: HashMap<CallId, Option<CallListing>> =
            ids.iter().map(|id| (*id, None)).collect();
        for listing in store.call_listings(&ids).await? {
            rows.insert(listing.call_id, Some(listing));
        }
        for e in batch {
            if let Some(row) = rows.get_mut(&e.meta.call_id) {
                CallListing::fold(row, e);
            }
        }
        let changed: Vec<CallListing> = rows.into_values().flatten().collect();
        store
            .commit_call_listings(&changed, Self::NAME, from, to)
            .await?;
        Ok(())
    }
}
