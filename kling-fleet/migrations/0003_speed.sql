-- The generation speed a fleet learns (seconds of generation per second of
-- audio), shared so that every worker polls near a task's expected end.
CREATE TABLE kling.speed_samples (
    id      bigserial PRIMARY KEY,
    service text NOT NULL,              -- the service's base URL
    worker  text NOT NULL,              -- who learned it
    ratio   double precision NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX speed_samples_by_service ON kling.speed_samples (service, id);
