#!/usr/bin/env bash
# metrics_listen: Prometheus and probes get an address of their own; the
# main address (perhaps public) then has no /metrics, and the metrics
# address serves nothing but /metrics, /healthz and /readyz.
source "$(dirname "$0")/lib.sh"

printf 'metrics_listen = "127.0.0.1:0"\n' > "$TMP/larder.toml"
start_server "$TMP/data" --config "$TMP/larder.toml"
OPS=$(sed -n 's/.*metrics and probes on \(http:\/\/[0-9.:]*\).*/\1/p' "$TMP/data/serve.log" | head -1)
[ -n "$OPS" ] || fail "no metrics address in the log: $(cat "$TMP/data/serve.log")"
[ "$OPS" != "$URL" ] || fail "the metrics address is the main one"

expect_status 404 "/metrics on the main address" "$URL/metrics"
body_has "metrics_listen"
expect_status 200 "/healthz on the main address" "$URL/healthz"
expect_status 200 "/metrics on the metrics address" "$OPS/metrics"
body_has "larder_uploads_total 0"
body_has "larder_db_connections "
expect_status 200 "/readyz on the metrics address" "$OPS/readyz"
expect_status 200 "/healthz on the metrics address" "$OPS/healthz"
expect_status 200 "a cache on the main address" "$URL/main/nix-cache-info"
for target in /main/nix-cache-info / /api/v1/caches "/main/0000000000000000000000000000000a.narinfo"; do
    expect_status 404 "$target on the metrics address" "$OPS$target"
done
body_has "serves only /metrics"
# The counters are the server's: a request on the main address shows up.
scrape=$(curl -sf "$OPS/metrics")
grep -qx 'larder_http_requests_total{route="cache_info",method="GET",status="200"} 1' <<< "$scrape" \
    || fail "the main address's request is not counted: $(grep cache_info <<< "$scrape")"
pass "metrics_listen: /metrics only on $OPS, which serves nothing else"
