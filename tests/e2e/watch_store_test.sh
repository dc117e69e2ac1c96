#!/usr/bin/env bash
# larder watch-store: paths built while it runs appear in the cache, both by
# watching Nix's database and through the post-build-hook queue.
source "$(dirname "$0")/lib.sh"

start_server "$TMP/data"
export LARDER_SERVER=$URL LARDER_TOKEN=$ADMIN_TOKEN
visible() { status_anon -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/main/$(basename "$1" | cut -c1-32).narinfo"; }
wait_visible() {  # PATH SECONDS
    for _ in $(seq $(($2 * 10))); do
        [ "$(visible "$1")" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
build() {  # NAME [NIX-ARGS]: builds a new derivation that references a fresh input
    local name=$1 dep
    shift
    echo "input of $name $$" > "$TMP/$name.in"
    dep=$(nix-store --add "$TMP/$name.in")
    nix-build --no-out-link "$@" -E "derivation { name = \"$name\"; system = builtins.currentSystem; builder = \"/bin/sh\";
        args = [ \"-c\" \"echo \${builtins.storePath \"$dep\"} > \$out\" ]; }" 2>> "$TMP/nix.log" | tail -1 || true
}

# 1. Watching the store: a new build appears with its closure.
"$LARDER" watch-store main --interval 0.2 > "$TMP/watch.log" 2>&1 &
WATCH_PID=$!
trap 'kill $WATCH_PID 2>/dev/null || true; cleanup' EXIT
sleep 0.5
out=$(build watched-$$)
[ -n "$out" ] || fail "the build failed: $(tail -3 "$TMP/nix.log")"
wait_visible "$out" 60 || fail "$out did not appear in the cache: $(tail -5 "$TMP/watch.log")"
dep=$(nix-store -q --references "$out")
[ "$(visible "$dep")" = 200 ] || fail "its reference $dep is not in the cache"
grep -q '\.drv' "$TMP/data/serve.log" && fail "watch-store pushed a .drv"
pass "watch-store pushed a new build and its reference"
kill -TERM $WATCH_PID
wait $WATCH_PID || fail "watch-store did not exit cleanly on SIGTERM"

# 2. The post-build-hook queues and returns at once; watch-store --queue pushes.
cat > "$TMP/hook.sh" <<HOOK
#!/bin/sh
exec "$LARDER" enqueue --queue "$TMP/queue"
HOOK
chmod +x "$TMP/hook.sh"
start=$(date +%s%N)
out2=$(build hooked-$$ --option post-build-hook "$TMP/hook.sh")
[ -n "$out2" ] || fail "the build with the hook failed: $(tail -3 "$TMP/nix.log")"
ls "$TMP"/queue/*.paths > /dev/null 2>&1 || fail "the hook queued nothing"
grep -q "hooked-$$" "$TMP"/queue/*.paths || fail "the queue lacks $out2 (and its .drv)"
[ "$(visible "$out2")" = 404 ] || fail "pushed before watch-store ran"
"$LARDER" watch-store main --queue "$TMP/queue" --interval 0.2 > "$TMP/watch2.log" 2>&1 &
WATCH_PID=$!
wait_visible "$out2" 60 || fail "$out2 did not appear: $(tail -5 "$TMP/watch2.log")"
for _ in $(seq 50); do ls "$TMP"/queue/*.paths > /dev/null 2>&1 || break; sleep 0.1; done
ls "$TMP"/queue/*.paths > /dev/null 2>&1 && fail "the queue was not emptied"
pass "post-build-hook queued $out2 and watch-store --queue pushed it"
