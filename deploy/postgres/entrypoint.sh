#!/usr/bin/env bash
# Entrypoint of the compose `postgres` service: the official one, plus one case the runbook
# needs. Its rollback restores with `docker compose run --rm -T postgres psql -U postgres`
# after the stack is down: nothing serves the data volume then, so a one-off `psql`/`pg_restore`
# starts a private server on it (no TCP listener), runs, and stops it cleanly. While the
# service is up, the one-off command talks to it over the network instead: two servers must
# never open one data directory.
set -Eeuo pipefail

case "${1:-}" in
  psql | pg_dump | pg_dumpall | pg_restore)
    if pg_isready -q -h postgres -p 5432 -t 3; then
      export PGHOST=postgres PGPASSWORD="${POSTGRES_PASSWORD:-}"
      exec "$@"
    fi
    # shellcheck source=/dev/null
    source /usr/local/bin/docker-entrypoint.sh
    docker_setup_env
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
      docker_create_db_directories
      docker_verify_minimum_env
      docker_init_database_dir
      pg_setup_hba_conf postgres
      export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
      docker_temp_server_start postgres -c shared_preload_libraries=pg_stat_statements
      docker_setup_db
      docker_process_init_files /docker-entrypoint-initdb.d/*
    else
      docker_temp_server_start postgres -c shared_preload_libraries=pg_stat_statements
    fi
    trap 'docker_temp_server_stop' EXIT
    "$@"
    ;;
  *)
    exec docker-entrypoint.sh "$@"
    ;;
esac
