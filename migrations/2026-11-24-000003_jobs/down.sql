DROP TABLE job_history;
DROP TABLE jobs;
