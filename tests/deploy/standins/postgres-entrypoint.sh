#!/bin/sh
# What the official image's entrypoint does, in short: as root, own the data directory
# and drop to postgres; on an empty data directory, initdb with POSTGRES_USER and its
# password (scram over TCP), create POSTGRES_DB; then run the server on every address.
set -eu
if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec runuser -u postgres -- "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    # UTF8 as the official image (LANG en_US.utf8): with no locale initdb would pick
    # SQL_ASCII, whose text psycopg hands back as bytes.
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --encoding=UTF8 \
        --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [ "${POSTGRES_DB:-$POSTGRES_USER}" != postgres ]; then
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
            -c "CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\""
    fi
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
if [ "$1" = postgres ]; then
    shift
    exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
fi
exec "$@"
