#!/usr/bin/env bash
# The metadata store test suite (tests/db) against a real PostgreSQL that
# this script starts; the same tests run against SQLite in the unit tests.
source "$(dirname "$0")/lib.sh"
: "${LARDER_TESTS:?path to larder_tests}"
postgres_start || fail "could not start PostgreSQL"
LARDER_TEST_PG_URL=$PG_URL "$LARDER_TESTS" --gtest_filter='Backends/MetadataStoreTest.*/postgres' > "$TMP/out" 2>&1 \
    || { cat "$TMP/out"; fail "metadata store tests on PostgreSQL"; }
grep -q 'SKIPPED' "$TMP/out" && { cat "$TMP/out"; fail "tests were skipped"; }
pass "metadata store suite on PostgreSQL: $(grep -o '[0-9]* tests\? from [0-9]* test suite' "$TMP/out" | head -1)"
