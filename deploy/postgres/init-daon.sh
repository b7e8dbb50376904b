#!/usr/bin/env bash
# First start of the compose PostgreSQL (docker-entrypoint-initdb.d): the application role
# `daon_api`, its database `daon_production`, and pg_stat_statements (the runbook queries it).
# The superuser stays `postgres`; the API never uses it.
set -euo pipefail
: "${DAON_API_PASSWORD:?POSTGRES_PASSWORD (the daon_api role) missing from .env: run daon init}"
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres --set daon_password="$DAON_API_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE daon_api LOGIN PASSWORD %L', :'daon_password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'daon_api') \gexec
SELECT 'CREATE DATABASE daon_production OWNER daon_api'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'daon_production') \gexec
SQL
psql -v ON_ERROR_STOP=1 --username postgres --dbname daon_production <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
GRANT pg_read_all_stats TO daon_api;
SQL
