-- Lead scoring: the trained models of each workspace (one active) and, on each lead, who
-- scored it, when, with which model, and why.
CREATE TABLE lead_scoring_models (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    -- 1, 2, 3... per workspace: what `activateLeadScoringModel(version)` names.
    version INT NOT NULL,
    -- The learner that won on the held-out split: random_forest or gradient_boosting.
    learner TEXT NOT NULL CHECK (learner IN ('random_forest', 'gradient_boosting')),
    active BOOLEAN NOT NULL DEFAULT false,
    -- Held-out metrics of the kept learner, and every candidate's.
    metrics JSONB NOT NULL,
    candidates JSONB NOT NULL DEFAULT '[]',
    positives INT NOT NULL,
    negatives INT NOT NULL,
    train_rows INT NOT NULL,
    test_rows INT NOT NULL,
    -- [{name, kind, ...encoding}]: the features the model reads, in column order.
    features JSONB NOT NULL,
    importances JSONB NOT NULL,
    -- The trees (see src/scoring/trees.rs).
    model JSONB NOT NULL,
    training_ms BIGINT NOT NULL,
    started_by BIGINT REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (workspace_id, version)
);
CREATE UNIQUE INDEX lead_scoring_models_active_idx ON lead_scoring_models (workspace_id)
    WHERE active;

ALTER TABLE leads
    ADD COLUMN scored_at TIMESTAMPTZ,
    ADD COLUMN scorer TEXT CHECK (scorer IN ('rules', 'model')),
    ADD COLUMN score_model_version INT,
    -- {base, factors: [{feature, value, contribution}]}
    ADD COLUMN score_factors JSONB;
-- Rescoring rewrites every lead of a workspace. With room left on each page and no index on
-- the score columns, those updates are HOT (no index entries, the trigram index above all):
-- four times faster in bench/lead_scoring.sh. Applies to pages written from now on.
ALTER TABLE leads SET (fillfactor = 75);
