//! Control tokens: made (superseding the card's older ones of the type),
//! found, an attempt used, redeemed. Whether a token may still be used is
//! `domain::token::state`; the store applies the answer as a compare-and-set
//! on the token's row, so of requests racing for a token exactly one wins.

use super::{card_state, outbox};
use crate::domain::ids::SecretHash;
use crate::domain::time::Timestamp;
use crate::domain::token::{self, TokenError};
use crate::store::backend::Backend;
use crate::store::db::{Db, DbResult, Sql, args, first, sql};
use crate::store::decode::{self, select, token_cols};
use crate::store::error::StoreFuture;
use crate::store::rows::{Created, Effects, IdemRow, PinChange, TokenRow};

const SUPERSEDE: Sql = sql!(
    "UPDATE control_tokens SET superseded_at = $1
     WHERE card_id = $2 AND type = $3 AND superseded_at IS NULL AND used_at IS NULL"
);
const INSERT_TOKEN: Sql = sql!(
    "INSERT INTO control_tokens (id, token_hash, card_id, type, cvm, created_at, expires_at, attempts_remaining, always_staged)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const TOKEN_BY_HASH: Sql = select!(token_cols, " FROM control_tokens WHERE token_hash = $1");
const TOKEN: Sql = select!(token_cols, " FROM control_tokens WHERE id = $1");
/// `$1` the token; the rest: the state it must still be in.
const USE_ATTEMPT: Sql = sql!(
    "UPDATE control_tokens SET attempts_remaining = $2
     WHERE id = $1 AND used_at IS NULL AND superseded_at IS NULL AND attempts_remaining = $3"
);
const REDEEM: Sql = sql!(
    "UPDATE control_tokens SET used_at = $2
     WHERE id = $1 AND used_at IS NULL AND superseded_at IS NULL AND attempts_remaining = $3"
);
const STAGE_PIN: Sql = sql!(
    "UPDATE cards SET staged_pin_block = $1, staged_pin_key_version = $2,
         staged_expires_at = $3, staged_token_id = $4, updated_at = $5
     WHERE id = $6"
);

/// The token as it is now, and what `domain::token` says of using it at `now`.
async fn usable(
    db: &mut dyn Db,
    token_id: &str,
    now: Timestamp,
) -> DbResult<Result<TokenRow, TokenError>> {
    let Some(t) = first(db, &TOKEN, &args![token_id], decode::token).await? else {
        return Ok(Err(TokenError::Invalid));
    };
    Ok(token::state(
        t.used_at,
        t.superseded_at,
        t.expires_at,
        t.attempts_remaining,
        now,
    )
    .map(|()| t))
}

/// How often a token's compare-and-set that lost a race is tried again:
/// each loss means another request changed the token, so the next read
/// usually refuses it.
const CAS_TRIES: usize = 8;

pub trait TokenStore: Backend {
    /// Inserts a token; older unused tokens of its type for its card are superseded.
    fn create_token(
        &self,
        t: TokenRow,
        idem: Option<IdemRow>,
        effects: Effects,
    ) -> impl StoreFuture<Created> {
        self.write((t, idem, effects), |db, (t, idem, effects)| {
            Box::pin(async move {
                if !outbox::claim_idempotency(db, idem.as_ref()).await? {
                    return Ok(Created::IdempotencyKeyTaken);
                }
                // Two creates for one card on two nodes queue on the card's row,
                // so the second supersedes the first: only the newest is valid.
                card_state::lock_by_id(db, &t.card_id).await?;
                db.exec(
                    &SUPERSEDE,
                    &args![t.created_at, &t.card_id, t.kind.as_str()],
                )
                .await?;
                let row = args![
                    &t.id,
                    &t.token_hash,
                    &t.card_id,
                    t.kind.as_str(),
                    &t.cvm,
                    t.created_at,
                    t.expires_at,
                    t.attempts_remaining,
                    t.always_staged,
                ];
                db.exec(&INSERT_TOKEN, &row).await?;
                outbox::apply(db, effects).await?;
                Ok(Created::Created)
            })
        })
    }

    fn find_token(&self, hash: SecretHash) -> impl StoreFuture<Option<TokenRow>> {
        // One unique-index lookup, on the path of every set and reveal.
        self.read_short(hash, |db, hash| {
            Box::pin(async move { first(db, &TOKEN_BY_HASH, &args![hash], decode::token).await })
        })
    }

    /// Uses one attempt of a still-valid token; returns the attempts left.
    /// `effects` are written only when an attempt is used.
    fn use_token_attempt(
        &self,
        token_id: &str,
        now: Timestamp,
        effects: Effects,
    ) -> impl StoreFuture<Result<u32, TokenError>> {
        self.write(
            (token_id.to_owned(), now, effects),
            |db, (id, now, effects)| {
                Box::pin(async move {
                    for _ in 0..CAS_TRIES {
                        let t = match usable(db, id, *now).await? {
                            Ok(t) => t,
                            Err(refused) => return Ok(Err(refused)),
                        };
                        let left = t.attempts_remaining - 1;
                        let cas = args![id, left, t.attempts_remaining];
                        if db.exec(&USE_ATTEMPT, &cas).await? == 1 {
                            outbox::apply(db, effects).await?;
                            return Ok(Ok(left));
                        }
                    }
                    Err(crate::store::db::lost("the control token"))
                })
            },
        )
    }

    /// Redeems a still-valid token and, in the same transaction, sets or stages
    /// the card's PIN when a change is given (see [`PinChange`]).
    /// `effects` are written only when the token is redeemed.
    fn redeem_token(
        &self,
        token_id: &str,
        change: Option<PinChange>,
        now: Timestamp,
        effects: Effects,
    ) -> impl StoreFuture<Result<(), TokenError>> {
        let data = (token_id.to_owned(), change, now, effects);
        self.write(data, |db, (id, change, now, effects)| {
            Box::pin(async move {
                // The card first, then the token: the order create_token locks
                // them in, so the two never wait on each other in a cycle. The
                // token read before the lock is used as it is; if it changed
                // meanwhile the compare-and-set fails and it is read again.
                let mut t = match usable(db, id, *now).await? {
                    Ok(t) => t,
                    Err(refused) => return Ok(Err(refused)),
                };
                let Some(card) = card_state::lock_by_id(db, &t.card_id).await? else {
                    return Ok(Err(TokenError::Invalid));
                };
                for _ in 0..CAS_TRIES {
                    let cas = args![id, *now, t.attempts_remaining];
                    if db.exec(&REDEEM, &cas).await? == 1 {
                        match change {
                            None => {}
                            Some(PinChange::Set(pin)) => {
                                let applied = card_state::set_pin(db, &card, pin, *now).await?;
                                if !applied {
                                    return Err(crate::store::db::lost("the card"));
                                }
                            }
                            Some(PinChange::Stage { pin, expires_at }) => {
                                let stage = args![
                                    &pin.block,
                                    pin.key_version,
                                    *expires_at,
                                    id,
                                    *now,
                                    &card.id
                                ];
                                db.exec(&STAGE_PIN, &stage).await?;
                            }
                        }
                        outbox::apply(db, effects).await?;
                        return Ok(Ok(()));
                    }
                    t = match usable(db, id, *now).await? {
                        Ok(t) => t,
                        Err(refused) => return Ok(Err(refused)),
                    };
                }
                Err(crate::store::db::lost("the control token"))
            })
        })
    }
}

impl<B: Backend> TokenStore for B {}
