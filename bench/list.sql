-- The first page of GET /api/v1/environments, for pgbench: what the
-- database alone does for the list path.
SELECT * FROM environments ORDER BY id DESC LIMIT 51;
