-- `kling batch --store`: the jobs of every batch, shared by every worker.
-- Every time is the database's clock. See docs/design/shared-store.md.

CREATE TABLE kling.jobs (
    batch       text NOT NULL,              -- the manifest's name, or --batch-name
    id          text NOT NULL,              -- the manifest line's id
    line        integer NOT NULL,           -- its line number, for messages and order
    input       text NOT NULL,              -- the line's inputs, canonically
    state       text NOT NULL CHECK (state IN ('todo', 'submitting', 'running', 'unknown', 'rejected', 'finished')),
    task_id     text,                       -- the latest task (running, finished)
    task_ids    text[] NOT NULL DEFAULT '{}', -- every task created for the job, oldest first
    result      jsonb,                      -- its results.jsonl line (finished, rejected)
    error       text,                       -- why it is unknown
    owner       text,                       -- the worker holding the lease
    lease_until timestamptz,                -- the lease; past it the job is anyone's (or unknown)
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (batch, id)
);
CREATE INDEX jobs_claimable ON kling.jobs (batch, state, line);
