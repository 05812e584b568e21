-- The nonce in a job's callBackUrl (webhook mode, --listen): recorded with
-- the intent, so that a callback can name the task of a lost create answer.
ALTER TABLE kling.jobs ADD COLUMN IF NOT EXISTS nonce text;
