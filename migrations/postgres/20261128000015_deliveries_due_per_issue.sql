-- Claims walk one issue's due deliveries in next_attempt_at order: with the issue first in the
-- index they read only the rows they take, instead of sorting every pending row of the issue.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (issue_id, next_attempt_at) WHERE status IN ('pending', 'retrying');
