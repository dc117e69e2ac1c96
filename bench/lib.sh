# Shared setup of the benchmarks that run larder against Nix: the release
# build, the e2e helpers (scratch dir, start_server), and the medium corpus.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LARDER=$PWD/build/release/larder LARDER_SOURCE=$PWD
[ -x "$LARDER" ] || scripts/build.sh release > /dev/null
source tests/e2e/lib.sh
export NIX_CONFIG="$NIX_CONFIG"$'\n'"require-sigs = false"
root=$(bash tests/e2e/make_corpus.sh medium)

# nginx serving ROOT, with request logs on (like larder's): sets NGINX_URL.
# EXTRA: more directives for its server block (e.g. WebDAV PUT).
start_nginx() {  # ROOT [EXTRA]
    local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$TMP/nginx"
    cat > "$TMP/nginx/nginx.conf" <<NGINX
user root;
worker_processes $(nproc);
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 1024; }
http {
    access_log $TMP/nginx/access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_max_body_size 0;
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx;
    proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx;
    uwsgi_temp_path $TMP/nginx;
    scgi_temp_path $TMP/nginx;
    server { listen 127.0.0.1:$port; root $1; ${2:-} }
}
NGINX
    nginx -c "$TMP/nginx/nginx.conf"
    trap 'kill $(cat "$TMP/nginx/nginx.pid") 2>/dev/null; cleanup' EXIT
    NGINX_URL=http://127.0.0.1:$port
}
