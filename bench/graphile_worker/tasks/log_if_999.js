// graphile-worker's own perf-test task (perfTest/tasks/log_if_999.js): a no-op unless id 999.
module.exports = ({ id }) => {
  if (id === 999) {
    console.log("Found 999!");
  }
};
