// The .ls listing, written as the NAR streams past: {"version":1,"root":...}
// with keys in Nix's order and strings escaped as Nix's JSON writer does.
#include <vector>

#include <fmt/core.h>

#include "nar/nar.hpp"

namespace larder::nar {

namespace {

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (static_cast<unsigned char>(c) < 0x20)
                    out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
                else
                    out += c;
        }
    }
    out += '"';
}

class Lister : public Visitor {
public:
    explicit Lister(Sink& out) : m_out(out) {}

    Result<void> directory_begin(std::string_view path) override {
        key(path);
        m_buf += R"({"type":"directory","entries":{)";
        m_first.push_back(true);
        return ok();
    }

    Result<void> directory_end() override {
        m_buf += "}}";
        m_first.pop_back();
        return finish_if_root();
    }

    Result<void> regular_begin(std::string_view path, bool executable, uint64_t size,
                               uint64_t nar_offset) override {
        key(path);
        m_buf += fmt::format(R"({{"type":"regular","size":{})", size);
        if (executable) m_buf += R"(,"executable":true)";
        m_buf += fmt::format(R"(,"narOffset":{}}})", nar_offset);
        return finish_if_root();
    }

    Result<void> regular_data(std::string_view) override { return ok(); }

    Result<void> symlink(std::string_view path, std::string_view target) override {
        key(path);
        m_buf += R"({"type":"symlink","target":)";
        append_json_string(m_buf, target);
        m_buf += '}';
        return finish_if_root();
    }

private:
    // Opens the value for `path`: the root, or a named entry of the current
    // directory (the last component of the path).
    void key(std::string_view path) {
        if (m_first.empty()) {
            m_buf += R"({"version":1,"root":)";
            return;
        }
        if (!m_first.back()) m_buf += ',';
        m_first.back() = false;
        auto slash = path.rfind('/');
        append_json_string(m_buf, slash == std::string_view::npos ? path : path.substr(slash + 1));
        m_buf += ':';
    }

    Result<void> finish_if_root() {
        if (!m_first.empty()) {
            if (m_buf.size() < 64 * 1024) return ok();
        } else {
            m_buf += '}';
        }
        TRY(m_out.write(m_buf));
        m_buf.clear();
        return ok();
    }

    Sink& m_out;
    std::string m_buf;
    std::vector<bool> m_first;  // per open directory: no entry written yet
};

}  // namespace

std::unique_ptr<Visitor> make_lister(Sink& out) { return std::make_unique<Lister>(out); }

}  // namespace larder::nar
