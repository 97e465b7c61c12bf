//! Cards written in bulk and legacy PINs captured: a portfolio coming in
//! (`pinvault cards import`, API.md "Portfolio migration").

use super::cards::{CARD_COLUMNS, card_args};
use super::{card_state, outbox};
use crate::domain::time::Timestamp;
use crate::store::backend::Backend;
use crate::store::db::{ALL, Sql, args, rows, sql_each};
use crate::store::error::StoreFuture;
use crate::store::{CardRow, Effects, PinWrite};

/// Which of these external ids (a JSON array) the program's cards have: one
/// probe of `cards_external` per id. On PostgreSQL the probe is a `LATERAL`
/// subquery, so no plan can turn it into a scan of all the program's index
/// entries filtered by a hash of the ids (the plan it took with the `IN`
/// form at millions of cards and no statistics yet: every batch read all the
/// entries before it, and the import slowed down as it went).
const EXTERNAL_IDS_TAKEN: Sql = sql_each!(
    pg: "SELECT c.external_id FROM jsonb_array_elements_text($2::text::jsonb) AS x (id)
         CROSS JOIN LATERAL (SELECT external_id FROM cards
                             WHERE program_id = $1 AND external_id = x.id LIMIT 1) c",
    sqlite: "SELECT external_id FROM cards WHERE program_id = $1
         AND external_id IN (SELECT value FROM json_each($2))",
);
/// Imports into one program wait for each other (PostgreSQL: a transaction
/// lock on the program; SQLite has one writer anyway), so two runs of one
/// file at once still import each line once.
const IMPORT_LOCK: Sql = sql_each!(
    pg: "SELECT pg_advisory_xact_lock(hashtext('pinvault import ' || $1))",
    sqlite: "",
);
pub trait ImportStore: Backend {
    /// A batch of a bulk import, in one transaction: each card with its
    /// effects, except where the program has a card with its external id
    /// already (an earlier run of the same file, another import, the API),
    /// then `audit(imported, skipped)`. Answers the indexes of the cards
    /// skipped.
    fn import_cards(
        &self,
        program_id: &str,
        cards: Vec<(CardRow, Effects)>,
        audit: impl Fn(usize, usize) -> crate::store::AuditEntry + Send + Sync + 'static,
    ) -> impl StoreFuture<Vec<usize>> {
        self.write(
            (program_id.to_owned(), cards, audit),
            |db, (program_id, cards, audit)| {
                Box::pin(async move {
                    db.exec(&IMPORT_LOCK, &args![program_id.as_str()]).await?;
                    // What the program has already, in one statement.
                    let ids: Vec<&str> = cards
                        .iter()
                        .filter_map(|(c, _)| c.external_id.as_deref())
                        .collect();
                    let ids = serde_json::to_string(&ids)
                        .map_err(|_| crate::store::db::bad("an external id that is not JSON"))?;
                    let taken_args = args![program_id.as_str(), ids.as_str()];
                    let taken =
                        rows(db, &EXTERNAL_IDS_TAKEN, &taken_args, |r| r.string(0), ALL).await?;
                    let mut taken: std::collections::HashSet<String> = taken.into_iter().collect();
                    let mut skipped = Vec::new();
                    let mut kept = Vec::with_capacity(cards.len());
                    for (i, (c, effects)) in cards.iter().enumerate() {
                        // Taken already, or earlier in this batch.
                        let fresh = match &c.external_id {
                            Some(x) => taken.insert(x.clone()),
                            None => true,
                        };
                        if fresh {
                            kept.push((c, effects));
                        } else {
                            skipped.push(i);
                        }
                    }
                    super::bulk::insert_all(db, CARD_COLUMNS, &kept, |(c, _)| card_args(c)).await?;
                    let entry = Effects {
                        events: Vec::new(),
                        audit: Some(audit(kept.len(), skipped.len())),
                    };
                    let mut all: Vec<&Effects> = kept.iter().map(|(_, e)| *e).collect();
                    all.push(&entry);
                    outbox::apply_many(db, &all).await?;
                    Ok(skipped)
                })
            },
        )
    }

    /// A legacy card's PIN, captured by a matching verification: stored the
    /// usual way (a new PIN's effects on the card's state and chip included)
    /// only while the card still holds the legacy data it was verified
    /// against, so two matching verifications at once capture once. `true`:
    /// this one captured it (and `effects` were written).
    fn capture_legacy_pin(
        &self,
        card: &CardRow,
        pin: PinWrite,
        now: Timestamp,
        effects: Effects,
    ) -> impl StoreFuture<bool> {
        let (card_id, legacy_block) = (card.id.clone(), card.pin_block.clone());
        self.write(
            (card_id, legacy_block, pin, now, effects),
            |db, (card_id, legacy_block, pin, now, effects)| {
                Box::pin(async move {
                    let Some(locked) = card_state::lock_by_id(db, card_id).await? else {
                        return Ok(false);
                    };
                    if locked.legacy.is_none() || locked.pin_block != *legacy_block {
                        return Ok(false);
                    }
                    if !card_state::set_pin(db, &locked, pin, *now).await? {
                        return Ok(false);
                    }
                    outbox::apply(db, effects).await?;
                    Ok(true)
                })
            },
        )
    }
}

impl<B: Backend> ImportStore for B {}
