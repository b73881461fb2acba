-- Open sign-up answers the same for a free and a taken email and finishes by email: a request
-- waits here (its token stored only as a digest) until the link's owner confirms it.
CREATE TABLE sign_up_requests (
    token_digest TEXT PRIMARY KEY,
    workspace_name TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sign_up_requests_email_idx ON sign_up_requests (email, created_at);
CREATE INDEX sign_up_requests_expires_idx ON sign_up_requests (expires_at);
