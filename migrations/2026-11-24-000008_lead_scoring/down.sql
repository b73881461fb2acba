ALTER TABLE leads RESET (fillfactor);
ALTER TABLE leads
    DROP COLUMN score_factors,
    DROP COLUMN score_model_version,
    DROP COLUMN scorer,
    DROP COLUMN scored_at;
DROP TABLE lead_scoring_models;
