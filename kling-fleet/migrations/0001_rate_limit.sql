-- Creation slots, shared by every process and host using one account.
-- Every time is the database's clock (clock_timestamp()), so the workers'
-- clocks never matter. See docs/design/shared-store.md.

CREATE TABLE kling.rate_accounts (
    account      text PRIMARY KEY,         -- AccountKey: a digest of key + base URL
    paused_until timestamptz               -- after a 429: no slot before this
);

CREATE TABLE kling.rate_slots (
    id          bigserial PRIMARY KEY,
    account     text NOT NULL REFERENCES kling.rate_accounts (account),
    taken_at    timestamptz NOT NULL,
    answered_at timestamptz,               -- NULL while the request is in flight
    lease_until timestamptz NOT NULL       -- a holder that died: counts as answered then
);
CREATE INDEX rate_slots_by_account ON kling.rate_slots (account);

-- One ask, in one round trip: a slot, or how long until one can free.
-- The account's row lock serialises the asks of every host.
CREATE FUNCTION kling.acquire_slot(p_account text, p_max integer, p_window_ms bigint, p_lease_ms bigint)
RETURNS TABLE (slot bigint, wait_ms bigint, paused boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_window interval := p_window_ms * interval '1 millisecond';
    v_now    timestamptz;
    v_paused timestamptz;
    v_count  integer;
    v_oldest timestamptz;
    v_id     bigint;
BEGIN
    SELECT a.paused_until INTO v_paused FROM kling.rate_accounts a
        WHERE a.account = p_account FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO kling.rate_accounts (account) VALUES (p_account) ON CONFLICT (account) DO NOTHING;
        SELECT a.paused_until INTO v_paused FROM kling.rate_accounts a
            WHERE a.account = p_account FOR UPDATE;
    END IF;
    -- Read after the lock: the ask that waited for it sees the time it got it.
    v_now := clock_timestamp();
    IF v_paused > v_now THEN
        RETURN QUERY SELECT NULL::bigint, ceil(extract(epoch FROM v_paused - v_now) * 1000)::bigint, true;
        RETURN;
    END IF;
    DELETE FROM kling.rate_slots s
        WHERE s.account = p_account
          AND COALESCE(s.answered_at, CASE WHEN s.lease_until <= v_now THEN s.lease_until END) + v_window <= v_now;
    SELECT count(*), min(COALESCE(s.answered_at, CASE WHEN s.lease_until <= v_now THEN s.lease_until END))
        INTO v_count, v_oldest
        FROM kling.rate_slots s WHERE s.account = p_account;
    IF v_count < p_max THEN
        INSERT INTO kling.rate_slots (account, taken_at, lease_until)
            VALUES (p_account, v_now, v_now + p_lease_ms * interval '1 millisecond')
            RETURNING id INTO v_id;
        RETURN QUERY SELECT v_id, 0::bigint, false;
        RETURN;
    END IF;
    -- Full: the oldest answer frees a slot a window after it; all in flight,
    -- one answered now frees a window from now.
    RETURN QUERY SELECT NULL::bigint,
        COALESCE(ceil(extract(epoch FROM v_oldest + v_window - v_now) * 1000)::bigint, p_window_ms),
        false;
END;
$$;
