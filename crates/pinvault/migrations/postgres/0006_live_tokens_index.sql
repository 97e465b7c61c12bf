-- Only a card's live tokens (neither superseded nor used) are looked up by card:
-- a new token supersedes them. The index on every token of a card made each
-- new token visit all of the card's old ones and take a new entry on a random
-- page of a large index; this one holds live tokens only (a few pages), and a
-- token leaves it when it is used or superseded.
DROP INDEX control_tokens_card;
CREATE INDEX control_tokens_live ON control_tokens (card_id, type)
    WHERE superseded_at IS NULL AND used_at IS NULL;
