# Sourced by ./quickstart test: make sure the tests have a real PostgreSQL server.
# On a machine that already runs one on 127.0.0.1:5432 with trust auth and a `test`
# database (as CI machines do), nothing happens. Otherwise the Debian package is
# installed, its cluster started, and a role and database of our own are made;
# CLEANCENTER_TEST_PG_URL then points the tests at them.
pg_ok() {
  .venv/bin/python - "$1" <<'PY' >/dev/null 2>&1
import sys, psycopg
psycopg.connect(sys.argv[1].replace("postgresql+psycopg", "postgresql"), connect_timeout=5).close()
PY
}

DEFAULT_PG="postgresql+psycopg://postgres@127.0.0.1:5432/test"
OWN_PG="postgresql+psycopg://cleancenter:cleancenter@127.0.0.1:5432/cleancenter_test"
if [ -n "${CLEANCENTER_TEST_PG_URL:-}" ] && pg_ok "$CLEANCENTER_TEST_PG_URL"; then
  :
elif pg_ok "$DEFAULT_PG"; then
  export CLEANCENTER_TEST_PG_URL="$DEFAULT_PG"
elif pg_ok "$OWN_PG"; then
  export CLEANCENTER_TEST_PG_URL="$OWN_PG"
else
  apt_install postgresql
  say "starting PostgreSQL and making the test role and database"
  for version in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster "$version" main start 2>/dev/null || true
  done
  i=0
  until runuser -u postgres -- psql -qAtc "select 1" >/dev/null 2>&1 || [ $i -ge 30 ]; do
    sleep 1; i=$((i + 1))
  done
  runuser -u postgres -- psql -qAtc "select 1 from pg_roles where rolname='cleancenter'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "create role cleancenter login password 'cleancenter'"
  runuser -u postgres -- psql -qAtc "select 1 from pg_database where datname='cleancenter_test'" | grep -q 1 \
    || runuser -u postgres -- psql -qc "create database cleancenter_test owner cleancenter"
  export CLEANCENTER_TEST_PG_URL="$OWN_PG"
  pg_ok "$CLEANCENTER_TEST_PG_URL" || { echo "PostgreSQL still unreachable at $OWN_PG" >&2; exit 2; }
fi
say "tests use PostgreSQL at ${CLEANCENTER_TEST_PG_URL}"
