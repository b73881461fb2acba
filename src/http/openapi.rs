//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the REST shim. Built from the same
//! definitions the routes use (the resources, their columns), so it cannot drift from them.

use axum::Json;
use serde_json::{json, Value};

use crate::imports::columns::Resource;

pub async fn document() -> Json<Value> {
    Json(openapi())
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

/// The JSON answer of an upload.
fn import_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": {
            "type": "object",
            "properties": {
                "success": { "type": "boolean" }, "import_id": { "type": "integer" },
                "job_id": { "type": ["integer", "null"] }, "status": { "type": "string" },
                "dry_run": { "type": "boolean" }, "total_rows": { "type": "integer" },
                "imported": { "type": "integer" }, "updated": { "type": "integer" },
                "skipped": { "type": "integer" }, "errors": { "type": "integer" },
                "failure": { "type": ["string", "null"] },
                "error_details": { "type": "array", "items": { "type": "object", "properties": {
                    "row": { "type": "integer" }, "column": { "type": ["string", "null"] },
                    "value": { "type": ["string", "null"] }, "error": { "type": "string" }
                } } },
                "error_details_truncated": { "type": "boolean" },
                "columns": { "type": "object" },
                "ignored_columns": { "type": "array", "items": { "type": "string" } }
            }
        } } }
    })
}

fn csv_response(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "Content-Disposition": { "schema": { "type": "string" } } },
        "content": { "text/csv": { "schema": { "type": "string" } } }
    })
}

pub fn openapi() -> Value {
    let resources: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
    let columns: serde_json::Map<String, Value> = Resource::ALL
        .iter()
        .map(|r| {
            let names: Vec<&str> = r.columns().iter().map(|c| c.name).collect();
            (r.name().to_string(), json!(names))
        })
        .collect();
    let resource_param = json!({
        "name": "resource", "in": "path", "required": true,
        "schema": { "type": "string", "enum": resources }
    });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "MyCRM REST shim",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Login and CSV routes compatible with the original MyCRM /api/v1. \
                Everything else is GraphQL at /graphql (schema.graphql)."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string", "examples": ["BAD_USER_INPUT", "UNAUTHENTICATED", "NOT_FOUND"] },
                        "message": { "type": "string" },
                        "field": { "type": "string" }
                    }, "required": ["code", "message"] } }
                }
            }
        },
        "x-csv-columns": columns,
        "paths": {
            "/api/auth/login/": { "post": {
                "summary": "Log in with e-mail (or username) and password",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object",
                    "properties": { "email": { "type": "string" }, "username": { "type": "string" }, "password": { "type": "string" } },
                    "required": ["password"]
                } } } },
                "responses": {
                    "200": { "description": "Tokens and the user", "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": { "access": { "type": "string" }, "refresh": { "type": "string" }, "user": { "type": "object" } }
                    } } } },
                    "400": error_response("A missing field"),
                    "401": error_response("Wrong credentials"),
                    "429": error_response("Too many attempts (see Retry-After)")
                }
            } },
            "/api/auth/refresh/": { "post": {
                "summary": "Trade a refresh token for new tokens (the old one is used up)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "refresh": { "type": "string" } }, "required": ["refresh"]
                } } } },
                "responses": {
                    "200": { "description": "New tokens", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "access": { "type": "string" }, "refresh": { "type": "string" } }
                    } } } },
                    "401": error_response("An unknown, expired or reused refresh token")
                }
            } },
            "/api/v1/export/{resource}/": { "get": {
                "summary": "Download the records you may see as CSV, streamed",
                "description": "Columns are those of x-csv-columns plus custom.<key> for each custom field \
                    in use. Filters: <column>=a,b (equality, any of), <column>_after / _before (times \
                    and dates; created_after means created_at after), <column>_min / _max (numbers), \
                    owner=<email>, assigned_to=<email>, tags=a,b (all of), search=<text>, \
                    assigned_to_me=true|false, owned_by_me=true|false (false: not the caller, \
                    unassigned records included, as GraphQL's assignedToMe: false). \
                    fields=a,b,c picks and orders the columns. \
                    Cells starting with = + - @ tab or CR are prefixed with an apostrophe. Times are \
                    UTC in PostgreSQL's ISO form (2026-11-24 09:30:00.5+00). Rows come in storage \
                    order, from one snapshot.",
                "security": [{ "bearer": [] }],
                "parameters": [
                    resource_param,
                    { "name": "fields", "in": "query", "schema": { "type": "string" }, "example": "email,status" },
                    { "name": "search", "in": "query", "schema": { "type": "string" } },
                    { "name": "assigned_to_me", "in": "query", "schema": { "type": "boolean" } },
                    { "name": "owned_by_me", "in": "query", "schema": { "type": "boolean" } },
                    { "name": "tags", "in": "query", "schema": { "type": "string" } }
                ],
                "responses": {
                    "200": csv_response("{resource}_export_YYYYMMDD_HHMMSS.csv"),
                    "400": error_response("A bad filter or field; `field` names the parameter"),
                    "401": error_response("No or an invalid access token"),
                    "404": error_response("An unknown resource"),
                    "429": error_response("Too many exports are running; try again shortly")
                }
            } },
            "/api/v1/import/{resource}/": { "get": {
                "summary": "An import template: every importable column and one example row",
                "security": [{ "bearer": [] }],
                "parameters": [resource_param],
                "responses": {
                    "200": csv_response("{resource}_template.csv"),
                    "401": error_response("No or an invalid access token"),
                    "404": error_response("An unknown resource")
                }
            }, "post": {
                "summary": "Import a CSV file (UTF-8 with or without BOM, or Windows-1252; , ; or tab)",
                "description": "Headers match fields ignoring case, spaces, dashes and underscores, \
                    with common synonyms; custom.<key> fills a custom field; other columns are \
                    reported in ignored_columns. Empty cells are not given (an update leaves \
                    them alone). Every row is validated like a create or update; every problem \
                    is reported with its line. Files with more lines than the server's inline \
                    limit answer 202 with job_id and run in the background.",
                "security": [{ "bearer": [] }],
                "parameters": [resource_param],
                "requestBody": { "required": true, "content": { "multipart/form-data": { "schema": {
                    "type": "object",
                    "properties": {
                        "file": { "type": "string", "format": "binary" },
                        "mapping": { "type": "string", "description": "JSON object: CSV header -> field name or custom.<key> (null ignores the column)" },
                        "update_existing": { "type": "boolean", "default": false },
                        "match_on": { "type": "string", "enum": ["email", "name", "domain", "id"], "description": "email for leads and contacts, name or domain for companies, id for all" },
                        "skip_errors": { "type": "boolean", "default": true, "description": "false: one bad row and nothing is written" },
                        "dry_run": { "type": "boolean", "default": false }
                    },
                    "required": ["file"]
                } } } },
                "responses": {
                    "200": import_response("The import ran: its totals and the problems of its rows"),
                    "202": import_response("Queued as a background job (job_id); follow it with job(id) or jobUpdated"),
                    "400": error_response("Bad options, or a file that cannot be imported (empty, duplicate headers)"),
                    "401": error_response("No or an invalid access token"),
                    "404": error_response("An unknown resource"),
                    "413": error_response("The upload is larger than the server's limit (100 MB by default)")
                }
            } },
            "/api/v1/import/{import_id}/errors.csv": { "get": {
                "summary": "Every failed row of an import as line,errors,<the file's columns>",
                "security": [{ "bearer": [] }],
                "parameters": [{ "name": "import_id", "in": "path", "required": true, "schema": { "type": "integer" } }],
                "responses": {
                    "200": csv_response("import_{import_id}_errors.csv"),
                    "401": error_response("No or an invalid access token"),
                    "404": error_response("No such import, or not one you may see")
                }
            } }
        }
    })
}
