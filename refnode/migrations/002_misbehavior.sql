-- What this node refused from a peer's replication stream, with the envelopes that prove it:
-- one row per offender, kind and sequence id (a repeat only counts up). Kinds: equivocation
-- (two different envelopes under one sequence id), gap (a sequence id skipped), stale (an
-- envelope re-sent below the stream's cursor), invalid (does not parse or verify).
CREATE TABLE misbehavior_reports (
    offender_node_id INT NOT NULL,
    kind TEXT NOT NULL,
    sequence_id BIGINT NOT NULL,
    evidence BYTEA NOT NULL,            -- the refused originator envelope, as received
    conflicting BYTEA,                  -- equivocation: the other envelope under that sequence id
    detail TEXT NOT NULL,
    times_seen INT NOT NULL DEFAULT 1,
    first_seen TIMESTAMP NOT NULL DEFAULT now(),
    last_seen TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (offender_node_id, kind, sequence_id)
);
