// An HTTP/1.1 proxy that makes a local server behave like a distant one: it
// adds a fixed delay before forwarding each request, and can answer every
// request with S3's "503 SlowDown" for a while. Benchmarks put it in front of
// radosgw; e2e tests use it for S3 throttling. Native (a thread per
// connection), because the benchmarks share their cores with it: a proxy in
// Python spent about 0.5 s of CPU per push of the medium corpus, which the S3
// figures then charged to Larder.
//
//   larder_delay_proxy --listen PORT --upstream HOST:PORT [--delay-ms N]
//                      [--slowdown-file PATH] [--stats-file PATH]
//
// While PATH (--slowdown-file) exists, requests get 503 SlowDown without
// reaching the upstream. --stats-file: rewritten after each request with
// "requests N slowdowns M".
#include <arpa/inet.h>
#include <fmt/core.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace {

struct Options {
    int listen = 0;
    std::string upstream_host;
    int upstream_port = 0;
    double delay_ms = 0;
    std::string slowdown_file;
    std::string stats_file;
};

constexpr size_t k_piece = 256 * 1024;
constexpr size_t k_max_head = 1 << 20;
constexpr std::string_view k_slowdown =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code>"
    "<Message>Please reduce your request rate.</Message></Error>";

std::mutex g_stats_mutex;
uint64_t g_requests = 0, g_slowdowns = 0;

void count(bool slowdown, const Options& o) {
    std::lock_guard lock(g_stats_mutex);
    ++g_requests;
    if (slowdown) ++g_slowdowns;
    if (o.stats_file.empty()) return;
    std::string tmp = o.stats_file + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
        fmt::print(f, "requests {} slowdowns {}\n", g_requests, g_slowdowns);
        std::fclose(f);
        std::rename(tmp.c_str(), o.stats_file.c_str());
    }
}

bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

// One side of a connection, read through a buffer (heads and chunk-size
// lines are found in it; bodies pass through it).
class Peer {
public:
    explicit Peer(int fd) : m_fd(fd) {}
    ~Peer() {
        if (m_fd >= 0) ::close(m_fd);
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    int fd() const { return m_fd; }

    // Bytes up to and including `end`; nullopt at EOF or past k_max_head.
    std::optional<std::string> until(std::string_view end) {
        for (size_t from = 0;;) {
            auto at = m_buf.find(end, from);
            if (at != std::string::npos) {
                std::string out = m_buf.substr(0, at + end.size());
                m_buf.erase(0, at + end.size());
                return out;
            }
            if (m_buf.size() > k_max_head) return std::nullopt;
            from = m_buf.size() >= end.size() ? m_buf.size() - end.size() + 1 : 0;
            if (!fill()) return std::nullopt;
        }
    }
    // Copies exactly `n` bytes to `out` (nullopt out: discards them).
    bool copy(uint64_t n, std::optional<int> out) {
        while (n > 0) {
            if (m_buf.empty() && !fill()) return false;
            size_t take = static_cast<size_t>(std::min<uint64_t>(n, m_buf.size()));
            if (out && !write_all(*out, std::string_view(m_buf).substr(0, take))) return false;
            m_buf.erase(0, take);
            n -= take;
        }
        return true;
    }
    // Copies everything to `out` until this side closes.
    void copy_to_end(int out) {
        while (!m_buf.empty() || fill()) {
            if (!write_all(out, m_buf)) return;
            m_buf.clear();
        }
    }

private:
    bool fill() {
        size_t old = m_buf.size();
        m_buf.resize(old + k_piece);
        ssize_t n = ::recv(m_fd, m_buf.data() + old, k_piece, 0);
        m_buf.resize(old + static_cast<size_t>(std::max<ssize_t>(n, 0)));
        return n > 0;
    }

    int m_fd;
    std::string m_buf;
};

struct Head {
    std::string text;
    std::string first_line;
    std::map<std::string, std::string> fields;  // names in lower case
    std::string field(const std::string& name) const {
        auto it = fields.find(name);
        std::string v = it == fields.end() ? "" : it->second;
        std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
        return v;
    }
};

std::optional<Head> read_head(Peer& peer) {
    auto text = peer.until("\r\n\r\n");
    if (!text) return std::nullopt;
    Head h{*text, {}, {}};
    std::string_view rest(h.text);
    for (bool first = true; !rest.empty(); first = false) {
        auto eol = rest.find("\r\n");
        auto line = rest.substr(0, eol);
        rest.remove_prefix(eol + 2);
        if (first) {
            h.first_line = line;
            continue;
        }
        auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
        h.fields[name] = std::string(value);
    }
    return h;
}

// A body framed by Content-Length or chunked encoding, to `out` (or dropped).
bool copy_body(Peer& from, const Head& head, std::optional<int> out) {
    if (head.field("transfer-encoding") == "chunked") {
        for (;;) {
            auto line = from.until("\r\n");
            if (!line || (out && !write_all(*out, *line))) return false;
            uint64_t size = std::strtoull(line->c_str(), nullptr, 16);
            if (size == 0) {
                for (;;) {  // trailers, then the empty line
                    auto t = from.until("\r\n");
                    if (!t || (out && !write_all(*out, *t))) return false;
                    if (*t == "\r\n") return true;
                }
            }
            if (!from.copy(size + 2, out)) return false;
        }
    }
    auto length = head.field("content-length");
    return from.copy(length.empty() ? 0 : std::strtoull(length.c_str(), nullptr, 10), out);
}

int connect_upstream(const Options& o) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.upstream_port));
    if (fd < 0 || ::inet_pton(AF_INET, o.upstream_host.c_str(), &a.sin_addr) != 1 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

void serve(int client_fd, const Options& o) {
    Peer client(client_fd);
    std::optional<Peer> upstream;
    for (;;) {
        auto head = read_head(client);
        if (!head) return;
        std::string method = head->first_line.substr(0, head->first_line.find(' '));
        if (o.delay_ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(o.delay_ms));
        if (!o.slowdown_file.empty() && std::filesystem::exists(o.slowdown_file)) {
            if (!copy_body(client, *head, std::nullopt)) return;
            if (!write_all(client.fd(), fmt::format("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                                                    "Content-Length: {}\r\n\r\n{}",
                                                    k_slowdown.size(), k_slowdown)))
                return;
            count(true, o);
            continue;
        }
        if (!upstream) {
            int fd = connect_upstream(o);
            if (fd < 0) return;
            upstream.emplace(fd);
        }
        if (!write_all(upstream->fd(), head->text) || !copy_body(client, *head, upstream->fd())) return;
        auto response = read_head(*upstream);
        if (!response || !write_all(client.fd(), response->text)) return;
        auto status_text = response->first_line.substr(response->first_line.find(' ') + 1);
        int status = std::atoi(status_text.c_str());
        bool has_body = method != "HEAD" && status != 204 && status != 304 && status >= 200;
        if (has_body && response->field("content-length").empty() &&
            response->field("transfer-encoding") != "chunked") {
            upstream->copy_to_end(client.fd());  // until the upstream closes
            return;
        }
        if (has_body && !copy_body(*upstream, *response, client.fd())) return;
        count(false, o);
        if (response->field("connection") == "close") return;
    }
}

int usage() {
    std::fputs("usage: larder_delay_proxy --listen PORT --upstream HOST:PORT [--delay-ms N] "
               "[--slowdown-file PATH] [--stats-file PATH]\n",
               stderr);
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view name = argv[i];
        std::string value = argv[i + 1];
        if (name == "--listen") o.listen = std::atoi(value.c_str());
        else if (name == "--upstream") {
            auto colon = value.rfind(':');
            if (colon == std::string::npos) return usage();
            o.upstream_host = value.substr(0, colon);
            o.upstream_port = std::atoi(value.c_str() + colon + 1);
        } else if (name == "--delay-ms") o.delay_ms = std::atof(value.c_str());
        else if (name == "--slowdown-file") o.slowdown_file = value;
        else if (name == "--stats-file") o.stats_file = value;
        else return usage();
    }
    if (argc % 2 == 0 || o.listen <= 0 || o.upstream_port <= 0) return usage();

    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.listen));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 256) != 0) {
        std::perror("larder_delay_proxy: listen");
        return 1;
    }
    for (;;) {
        int fd = ::accept(listener, nullptr, nullptr);
        if (fd < 0) continue;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        std::thread([fd, &o] { serve(fd, o); }).detach();
    }
}
