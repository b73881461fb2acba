DROP INDEX companies_domain_idx;
DROP TABLE import_updated;
DROP TABLE import_created;
DROP TABLE import_failed_rows;
DROP TABLE import_file_chunks;
DROP TABLE imports;
