// Records when the job started against when it was enqueued (both PostgreSQL clocks).
module.exports = async ({ id, at }, { query }) => {
  await query(
    "INSERT INTO bench_latency (id, enqueued_at, started_at) VALUES ($1, $2, clock_timestamp())",
    [id, at],
  );
};
