# nginx serving a directory (an upstream binary cache for the pull-through
# tests; the baseline of the benchmarks), started by the test itself on a
# free port on 127.0.0.1, with an access log:
#   nginx_start ROOT [EXTRA]   sets NGINX_URL, NGINX_LOG; EXTRA: more
#                              directives for its server block (WebDAV PUT)
#   nginx_stop
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

nginx_start() {
    local port; port=$(free_port)
    NGINX_DIR=$(mktemp -d /tmp/larder-nginx.XXXXXX)
    cat > "$NGINX_DIR/nginx.conf" <<NGINX
user root;
worker_processes $(nproc);
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
events { worker_connections 1024; }
http {
    access_log $NGINX_DIR/access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_max_body_size 0;
    default_type application/octet-stream;
    client_body_temp_path $NGINX_DIR;
    proxy_temp_path $NGINX_DIR;
    fastcgi_temp_path $NGINX_DIR;
    uwsgi_temp_path $NGINX_DIR;
    scgi_temp_path $NGINX_DIR;
    server { listen 127.0.0.1:$port; root $1; ${2:-} }
}
NGINX
    nginx -c "$NGINX_DIR/nginx.conf" || return 1
    NGINX_URL=http://127.0.0.1:$port
    NGINX_LOG=$NGINX_DIR/access.log
}

nginx_stop() {
    [ -n "${NGINX_DIR:-}" ] || return 0
    if [ -e "$NGINX_DIR/nginx.pid" ]; then
        local pid; pid=$(cat "$NGINX_DIR/nginx.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ -z "${KEEP_TMP:-}" ]; then rm -rf "$NGINX_DIR"; fi
    NGINX_DIR=
}
