-- refnode's schema, after xmtpd's table names and columns, so that shakedown's observers and
-- verify suite read refnode and xmtpd databases alike.

CREATE TABLE node_info (
    node_id INT NOT NULL,
    public_key BYTEA NOT NULL,          -- the signer's uncompressed public key (65 bytes), as
                                        -- xmtpd keeps it; older refnodes kept its address
    singleton_id SMALLINT PRIMARY KEY DEFAULT 1 CHECK (singleton_id = 1)
);

CREATE TABLE payers (
    id SERIAL PRIMARY KEY,
    address TEXT NOT NULL UNIQUE
);

-- Envelopes a node has accepted but not yet sequenced. refnode sequences in the same
-- transaction that stores, so this stays empty; the table is kept for observers of xmtpd.
CREATE TABLE staged_originator_envelopes (
    id BIGSERIAL PRIMARY KEY,
    originator_time TIMESTAMP NOT NULL DEFAULT now(),
    payer_envelope BYTEA NOT NULL
);

CREATE TABLE gateway_envelopes_meta (
    originator_node_id INT NOT NULL,
    originator_sequence_id BIGINT NOT NULL,
    gateway_time TIMESTAMP NOT NULL DEFAULT now(),
    topic BYTEA NOT NULL,
    payer_id INT REFERENCES payers (id),
    expiry BIGINT,
    PRIMARY KEY (originator_node_id, originator_sequence_id)
);

CREATE TABLE gateway_envelopes_blob (
    originator_node_id INT NOT NULL,
    originator_sequence_id BIGINT NOT NULL,
    originator_envelope BYTEA NOT NULL,
    PRIMARY KEY (originator_node_id, originator_sequence_id)
);

-- The vector clock: highest sequence id stored per originator.
CREATE TABLE gateway_envelopes_latest (
    originator_node_id INT PRIMARY KEY,
    originator_sequence_id BIGINT NOT NULL,
    gateway_time TIMESTAMP NOT NULL DEFAULT now()
);

CREATE TABLE unsettled_usage (
    payer_id INT NOT NULL,
    originator_id INT NOT NULL,
    minutes_since_epoch INT NOT NULL,
    spend_picodollars BIGINT NOT NULL,
    last_sequence_id BIGINT NOT NULL DEFAULT 0,
    message_count INT NOT NULL DEFAULT 0,
    PRIMARY KEY (payer_id, originator_id, minutes_since_epoch)
);

-- attestation_status: 0 pending, 1 approved, 2 rejected.
-- submission_status: 0 pending, 1 submitted, 2 settled, 3 rejected.
CREATE TABLE payer_reports (
    id BYTEA PRIMARY KEY,
    originator_node_id INT NOT NULL,
    start_sequence_id BIGINT NOT NULL,
    end_sequence_id BIGINT NOT NULL,
    end_minute_since_epoch INT NOT NULL,
    payers_merkle_root BYTEA NOT NULL,
    active_node_ids INT[] NOT NULL,
    submission_status SMALLINT NOT NULL DEFAULT 0,
    attestation_status SMALLINT NOT NULL DEFAULT 0,
    submitted_report_index INT,
    created_at TIMESTAMP NOT NULL DEFAULT now()
);

CREATE TABLE payer_report_attestations (
    payer_report_id BYTEA NOT NULL REFERENCES payer_reports (id),
    node_id BIGINT NOT NULL,
    signature BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT now(),
    PRIMARY KEY (payer_report_id, node_id)
);
