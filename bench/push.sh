#!/usr/bin/env bash
# larder push of the medium corpus (205 paths) to a local `larder serve`,
# against `nix copy --to file://DIR?compression=zstd` and against
# `nix copy --to http://<larder>/<cache>?compression=zstd`, all in one run;
# then the re-push of the cached closure against `nix copy` noticing that
# every path is already there. Prints times, ratios and stored bytes.
#   bench/push.sh [runs]      (the best of `runs` timings of each, default 3)
runs=${1:-3}
source "$(dirname "$0")/lib.sh"
n=$(nix-store -qR "$root" | wc -l)
nar=$(nix path-info -S --json "$root" | jq '.[0].closureSize')
printf 'log_requests = false\n' > "$TMP/larder.toml"

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc -l; }
best() { printf '%s\n' "$@" | sort -g | head -1; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
bytes() { du -sb "$1" | cut -f1; }
fresh_xdg() { export XDG_CACHE_HOME=$TMP/xdg-$RANDOM$RANDOM; }

file_t=(); http_t=(); push_t=(); repush_t=(); recopy_t=()
for run in $(seq "$runs"); do
    # nix copy to a local directory, zstd.
    rm -rf "$TMP/files"; fresh_xdg
    t=$(now); nix copy --to "file://$TMP/files?compression=zstd" "$root" 2> /dev/null; file_t+=("$(since "$t")")
    file_bytes=$(bytes "$TMP/files")

    # nix copy to Larder over HTTP (a fresh server, so no chunk is deduplicated).
    rm -rf "$TMP/s1"; fresh_xdg
    start_server "$TMP/s1" --config "$TMP/larder.toml" > /dev/null
    printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
    t=$(now); nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$root" 2> /dev/null
    http_t+=("$(since "$t")")
    stop_server; PORT=

    # larder push to a fresh server.
    rm -rf "$TMP/s2"; fresh_xdg
    start_server "$TMP/s2" --config "$TMP/larder.toml" > /dev/null
    t=$(now); "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN" --json > "$TMP/push.json" 2> /dev/null
    push_t+=("$(since "$t")")
    [ "$(jq .pushed "$TMP/push.json")" -eq "$n" ] || { cat "$TMP/push.json"; fail "push incomplete"; }
    push_bytes=$(bytes "$TMP/s2/blobs")
    sent=$(jq .sent_bytes "$TMP/push.json")

    # The closure is cached: larder push (one request) against nix copy,
    # which asks for every narinfo (a fresh Nix cache, so it really asks).
    t=$(now); "$LARDER" push main "$root" --server "$URL" --token "$ADMIN_TOKEN" --json > "$TMP/repush.json" 2> /dev/null
    repush_t+=("$(since "$t")")
    [ "$(jq .cached "$TMP/repush.json")" -eq "$n" ] || fail "re-push pushed something"
    printf 'machine 127.0.0.1 password %s\n' "$ADMIN_TOKEN" > "$TMP/netrc"
    fresh_xdg
    t=$(now); nix copy --option netrc-file "$TMP/netrc" --to "$URL/main?compression=zstd" "$root" 2> /dev/null
    recopy_t+=("$(since "$t")")
    stop_server; PORT=
done

F=$(best "${file_t[@]}"); H=$(best "${http_t[@]}"); P=$(best "${push_t[@]}")
R=$(best "${repush_t[@]}"); C=$(best "${recopy_t[@]}")
printf 'medium corpus: %d paths, %d MB of NAR; best of %d runs on %d cores\n' "$n" $((nar / 1000000)) "$runs" "$(nproc)"
printf '%-52s %8.2f s\n' "nix copy --to file://?compression=zstd" "$F"
printf '%-52s %8.2f s  %5sx file://\n' "nix copy --to http://larder/main?compression=zstd" "$H" "$(ratio "$H" "$F")"
printf '%-52s %8.2f s  %5sx file://  %5sx nix copy http\n' "larder push main" "$P" "$(ratio "$P" "$F")" "$(ratio "$P" "$H")"
printf '%-52s %8.3f s\n' "nix copy to larder, everything already there" "$C"
printf '%-52s %8.3f s  %5sx nix copy\n' "larder push main, everything already there" "$R" "$(ratio "$R" "$C")"
printf 'stored: file:// %d MB, larder %d MB (%sx); larder push sent %d MB\n' $((file_bytes / 1000000)) \
    $((push_bytes / 1000000)) "$(ratio "$push_bytes" "$file_bytes")" $((sent / 1000000))
