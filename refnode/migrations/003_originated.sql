-- What the payer signed, for every envelope this node originated: the same payer envelope
-- published again is a replay, refused (ALREADY_EXISTS) instead of stored a second time
-- under a new sequence id.
CREATE TABLE originated_payer_envelopes (
    payer_digest BYTEA PRIMARY KEY,
    originator_sequence_id BIGINT NOT NULL
);
