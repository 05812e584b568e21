-- Which database this is, so that an output directory a fleet ran into can
-- tell this store from another (the URL alone cannot: a socket path and a
-- host name may reach the same database, and one URL may reach another).
CREATE TABLE IF NOT EXISTS kling.identity (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id text NOT NULL
);
-- Every nonce a job's intents carried (webhook mode): a rerun with
-- --resubmit-ambiguous listens on the earlier ones too.
ALTER TABLE kling.jobs ADD COLUMN IF NOT EXISTS nonces text[] NOT NULL DEFAULT '{}';
-- Finding the batch that holds a manifest's jobs (renamed manifests).
CREATE INDEX IF NOT EXISTS jobs_id_input ON kling.jobs (id, md5(input));
-- The service each batch's tasks are created on (its base URL, shown
-- safely): a worker pointed at another service is refused, since it would
-- find none of the batch's tasks there and pay for its jobs again.
CREATE TABLE IF NOT EXISTS kling.batches (
    batch      text PRIMARY KEY,
    service    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
