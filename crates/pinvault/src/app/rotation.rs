//! A storage-key rotation (`pinvault keys rotate`): a new version of each
//! storage kind, and every card re-encrypted under it, online and resumable.

use super::keys::{KEY_REFRESH, OnProgress, Step};
use super::{App, ServiceError};
use crate::domain::time::now;
use crate::keys::KeyKind;
use crate::store::{Store, StoreError};

/// Cards a rotation reads, re-encrypts and writes (in one transaction) at a
/// time.
const ROTATION_BATCH: u32 = 1000;
/// Cards one statement of a rotation's pass looks at, at most (so that none
/// runs long, however few of them are left to re-encrypt).
const ROTATION_WINDOW: u32 = 10 * ROTATION_BATCH;

impl<S: Store> App<S> {
    /// Adds a new version of each storage kind and re-encrypts every row under
    /// an older one, until none is left (or, when an earlier rotation did not
    /// finish, finishes it with the versions it made) (transport keys: [`Self::rotate_transport_key`]). Safe while servers run: they pick up the new
    /// versions within [`KEY_REFRESH`], old versions stay readable, and a row
    /// whose PIN changed meanwhile is read again and retried.
    pub async fn rotate_keys(
        &self,
        kinds: &[KeyKind],
        pause: Option<std::time::Duration>,
        on: &OnProgress,
    ) -> Result<RotationReport, ServiceError> {
        self.reload_keys().await?;
        let mut report = RotationReport::default();
        // Every card is old now: the progress total (an estimate on
        // PostgreSQL, none when it has none yet).
        let total = Some(self.store.cards_estimate().await?).filter(|n| *n > 0);
        let step = |what, done| Step {
            what,
            done,
            total: total.map(|t: u64| t.max(done)),
        };
        // A rotation that did not finish (stopped, or its process killed)
        // left cards under older versions than the current ones: it is
        // finished instead of another begun, so no card is re-encrypted twice.
        let versions = self.card_key_versions();
        let mut from = String::new();
        report.resumed = loop {
            let window = self
                .store
                .cards_under_old_keys(versions, &from, 1, ROTATION_WINDOW)
                .await?;
            if !window.cards.is_empty() {
                break true;
            }
            match window.next {
                Some(next) => from = next,
                None => break false,
            }
        };
        for &kind in kinds {
            if kind == KeyKind::Transport || report.resumed {
                continue;
            }
            let next = self.keys.current_version(kind).unwrap_or(0) + 1;
            let row = self.keys.new_row(kind, next, now())?;
            if !self.store.insert_data_key(row).await? {
                return Err(ServiceError::Store(StoreError::Conflict(format!(
                    "{} key version {next} was created by another rotation at the same time; run it again",
                    kind.as_str()
                ))));
            }
            report.new_versions.push((kind, next));
        }
        self.reload_keys().await?;
        let versions = self.card_key_versions();
        // Servers that have not refreshed yet may still write under the old
        // versions for up to KEY_REFRESH; passes continue until a quiet one.
        // A pass walks the cards in id order, a window at a time; it ends
        // when a whole pass finds none left, once the deadline has passed.
        let deadline = std::time::Instant::now() + KEY_REFRESH * 3;
        let mut from = String::new();
        let mut found = false;
        // A batch is re-encrypted in memory and written in one transaction
        // (a commit per card made a rotation of millions take hours) while
        // the next batch, of cards further on in id order, is read and
        // re-encrypted: the two never hold the same card.
        let mut written: Vec<crate::store::Rewrap> = Vec::new();
        loop {
            let next = async {
                let window = self
                    .store
                    .cards_under_old_keys(versions, &from, ROTATION_BATCH, ROTATION_WINDOW)
                    .await?;
                let mut rewraps = Vec::with_capacity(window.cards.len());
                for card in window.cards {
                    rewraps.push(self.rewrap_of(card).await?);
                }
                Ok::<_, ServiceError>((window.next, rewraps))
            };
            let (next, rewraps) = if written.is_empty() {
                next.await?
            } else {
                let (n, next) =
                    tokio::join!(self.store.rewrap_cards(std::mem::take(&mut written)), next);
                report.cards_reencrypted += n?;
                on(step("cards re-encrypted", report.cards_reencrypted));
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
                next?
            };
            found |= !rewraps.is_empty();
            if let Some(next) = next {
                from = next;
                written = rewraps;
                continue;
            }
            // The pass reached the last card: its last batch is written
            // before the next pass reads from the first one.
            if !rewraps.is_empty() {
                report.cards_reencrypted += self.store.rewrap_cards(rewraps).await?;
                on(step("cards re-encrypted", report.cards_reencrypted));
            }
            from.clear();
            if std::mem::take(&mut found) {
                continue;
            }
            if std::time::Instant::now() >= deadline {
                break;
            }
            on(step(
                "cards re-encrypted, waiting for running servers to take the new keys",
                report.cards_reencrypted,
            ));
            tokio::time::sleep(KEY_REFRESH / 2).await;
        }
        report.secrets_resealed = self.reseal_secrets().await?;
        on(step(
            "cards re-encrypted, secrets resealed",
            report.cards_reencrypted,
        ));
        Ok(report)
    }

    /// The current versions of the keys a card's rows are under: PIN, PAN,
    /// lookup (1 when there is none yet).
    fn card_key_versions(&self) -> (u32, u32, u32) {
        let current = |k| self.keys.current_version(k).unwrap_or(1);
        (
            current(KeyKind::Pin),
            current(KeyKind::Pan),
            current(KeyKind::Lookup),
        )
    }

    /// A card's PIN, PAN, PAN hash and staged PIN under the current data key
    /// versions, as a rotation writes them (unless the card changed since).
    async fn rewrap_of(
        &self,
        card: crate::store::CardRow,
    ) -> Result<crate::store::Rewrap, ServiceError> {
        self.ensure_key(KeyKind::Pin, card.pin_key_version).await?;
        self.ensure_key(KeyKind::Pan, card.pan_key_version).await?;
        let pan = self
            .keys
            .open_pan(&card.id, card.pan_key_version, &card.pan_sealed)?;
        let pin = self
            .keys
            .decipher_pin(card.pin_key_version, &card.pin_block, &pan)?;
        let (pin_version, block) = self.keys.encipher_pin(&pin, &pan)?;
        let (pan_version, pan_sealed) = self.keys.seal_pan(&card.id, &pan)?;
        let (lookup_version, pan_hash) = self.keys.pan_hash(&pan)?;
        let staged = match (&card.staged_pin_block, card.staged_pin_key_version) {
            (Some(old_block), Some(version)) => {
                self.ensure_key(KeyKind::Pin, version).await?;
                let staged_pin = self.keys.decipher_pin(version, old_block, &pan)?;
                let (key_version, block) = self.keys.encipher_pin(&staged_pin, &pan)?;
                Some(crate::store::StagedRewrap {
                    old_block: old_block.clone(),
                    block,
                    key_version,
                })
            }
            _ => None,
        };
        Ok(crate::store::Rewrap {
            card_id: card.id,
            old_pin_block: card.pin_block,
            pin: crate::store::PinWrite {
                block,
                key_version: pin_version,
                set_by: card.pin_set_by,
            },
            pan_sealed,
            pan_key_version: pan_version,
            pan_hash,
            lookup_key_version: lookup_version,
            staged,
        })
    }
}

#[derive(Debug, Default)]
pub struct RotationReport {
    pub new_versions: Vec<(KeyKind, u32)>,
    pub cards_reencrypted: u64,
    /// Webhook secrets and idempotency responses sealed again.
    pub secrets_resealed: u64,
    /// An unfinished rotation was finished: no new versions were made.
    pub resumed: bool,
}
