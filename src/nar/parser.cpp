// The bounded NAR parser. Memory use is the read buffer plus one name per
// directory level, whatever the input claims.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include <fmt/core.h>

#include "nar/nar.hpp"
#include "nar/wire.hpp"
#include "util/strings.hpp"

namespace larder::nar {

namespace {

constexpr size_t k_max_token = 16;  // "nix-archive-1", "directory", "executable", ...

Failure invalid(std::string_view why) {
    return fail(ErrorCode::invalid_input, fmt::format("invalid NAR: {}", why));
}

class Reader {
public:
    explicit Reader(Source& source) : m_source(source) {}

    uint64_t offset() const { return m_offset; }

    Result<void> read(char* out, size_t n) {
        while (n > 0) {
            if (m_window.empty()) TRY(fill());
            size_t take = std::min(n, m_window.size());
            std::memcpy(out, m_window.data(), take);
            consume(take);
            out += take;
            n -= take;
        }
        return ok();
    }

    Result<uint64_t> u64() {
        unsigned char b[8];
        TRY(read(reinterpret_cast<char*>(b), 8));
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = n << 8 | b[i];
        return n;
    }

    Result<void> padding(uint64_t len) {
        char pad[8];
        size_t n = wire::padding(len);
        TRY(read(pad, n));
        if (std::any_of(pad, pad + n, [](char c) { return c != 0; }))
            return invalid(fmt::format("non-zero padding at offset {}", m_offset - n));
        return ok();
    }

    // A string of at most `max` bytes; `what` names it in errors.
    Result<std::string> str(size_t max, std::string_view what) {
        TRY_ASSIGN(uint64_t len, u64());
        if (len > max)
            return invalid(fmt::format("{} at offset {} is {} bytes long, the limit is {}", what,
                                       m_offset - 8, len, max));
        std::string s(static_cast<size_t>(len), '\0');
        TRY(read(s.data(), s.size()));
        TRY(padding(len));
        return s;
    }

    Result<void> expect(std::string_view token) {
        auto at = m_offset;
        TRY_ASSIGN(auto s, str(k_max_token, fmt::format("token (expected '{}')", token)));
        if (s != token)
            return invalid(fmt::format("expected '{}' at offset {}, got '{}'", token, at,
                                       printable(s)));
        return ok();
    }

    // Streams `len` bytes of file contents to the visitor.
    Result<void> contents(uint64_t len, Visitor& visitor) {
        uint64_t left = len;
        while (left > 0) {
            if (m_window.empty()) TRY(fill());
            size_t take = static_cast<size_t>(std::min<uint64_t>(left, m_window.size()));
            TRY(visitor.regular_data(m_window.substr(0, take)));
            consume(take);
            left -= take;
        }
        return padding(len);
    }

    Result<bool> at_end() {
        if (!m_window.empty()) return false;
        TRY(next());
        return m_window.empty();
    }

private:
    Result<void> fill() {
        TRY(next());
        if (m_window.empty()) return invalid(fmt::format("unexpected end of input at offset {}", m_offset));
        return ok();
    }

    // The next bytes: lent by the source if it can (no copy), else read.
    Result<void> next() {
        TRY_ASSIGN(auto lent, m_source.borrow(std::numeric_limits<size_t>::max()));
        if (lent) {
            m_window = *lent;
        } else {
            if (m_buf.empty()) m_buf.resize(k_buffer_size);
            TRY_ASSIGN(size_t n, m_source.read(m_buf.data(), m_buf.size()));
            m_window = std::string_view(m_buf.data(), n);
        }
        return ok();
    }

    void consume(size_t n) {
        m_window.remove_prefix(n);
        m_offset += n;
    }

    static constexpr size_t k_buffer_size = 64 * 1024;
    Source& m_source;
    std::vector<char> m_buf;   // what read() fills, if the source lends nothing
    std::string_view m_window;  // the bytes at hand, not yet consumed: m_buf's, or the source's
    uint64_t m_offset = 0;
};

Result<void> check_name(std::string_view name, std::string_view dir) {
    std::string_view why;
    if (name.empty()) why = "is empty";
    else if (name == "." || name == "..") why = "is '.' or '..'";
    else if (name.find('/') != std::string_view::npos) why = "contains '/'";
    else if (name.find('\0') != std::string_view::npos) why = "contains a NUL byte";
    if (why.empty()) return ok();
    return invalid(fmt::format("entry name '{}' in directory '/{}' {}", printable(name),
                               printable(dir), why));
}

class Parser {
public:
    Parser(Source& source, Visitor& visitor, const Limits& limits)
        : m_in(source), m_visitor(visitor), m_limits(limits) {}

    Result<void> run() {
        TRY_ASSIGN(auto magic, m_in.str(k_max_token, "magic"));
        if (magic != wire::k_magic) return invalid("does not start with 'nix-archive-1'");
        std::string path;
        TRY(node(path, 0));
        TRY_ASSIGN(bool end, m_in.at_end());
        if (!end) return invalid(fmt::format("trailing data after offset {}", m_in.offset()));
        return ok();
    }

private:
    Result<void> node(std::string& path, size_t depth) {
        if (depth > m_limits.max_depth)
            return invalid(fmt::format("nesting deeper than {} levels", m_limits.max_depth));
        TRY(m_in.expect("("));
        TRY(m_in.expect("type"));
        auto at = m_in.offset();
        TRY_ASSIGN(auto type, m_in.str(k_max_token, "node type"));
        // A directory's loop consumes its closing ")"; the others end here.
        if (type == "directory") return directory(path, depth);
        if (type == "regular") TRY(regular(path));
        else if (type == "symlink") TRY(symlink(path));
        else return invalid(fmt::format("unknown node type '{}' at offset {}", printable(type), at));
        return m_in.expect(")");
    }

    Result<void> regular(const std::string& path) {
        auto at = m_in.offset();
        TRY_ASSIGN(auto tag, m_in.str(k_max_token, "file field"));
        bool executable = tag == "executable";
        if (executable) {
            TRY(m_in.expect(""));
            at = m_in.offset();
            TRY_ASSIGN(tag, m_in.str(k_max_token, "file field"));
        }
        if (tag != "contents")
            return invalid(fmt::format("expected 'contents' at offset {}, got '{}'", at,
                                       printable(tag)));
        TRY_ASSIGN(uint64_t size, m_in.u64());
        TRY(m_visitor.regular_begin(path, executable, size, m_in.offset()));
        TRY(m_in.contents(size, m_visitor));
        return m_visitor.regular_end();
    }

    Result<void> symlink(const std::string& path) {
        TRY(m_in.expect("target"));
        TRY_ASSIGN(auto target, m_in.str(m_limits.max_target_length, "symlink target"));
        if (target.empty()) return invalid(fmt::format("symlink '/{}' has an empty target", printable(path)));
        if (target.find('\0') != std::string::npos)
            return invalid(fmt::format("symlink '/{}' has a NUL byte in its target", printable(path)));
        return m_visitor.symlink(path, target);
    }

    Result<void> directory(std::string& path, size_t depth) {
        TRY(m_visitor.directory_begin(path));
        std::string previous;
        for (;;) {
            auto at = m_in.offset();
            TRY_ASSIGN(auto tag, m_in.str(k_max_token, "directory field"));
            if (tag == ")") break;
            if (tag != "entry")
                return invalid(fmt::format("expected 'entry' or ')' at offset {}, got '{}'", at,
                                           printable(tag)));
            TRY(m_in.expect("("));
            TRY(m_in.expect("name"));
            TRY_ASSIGN(auto name, m_in.str(m_limits.max_name_length, "entry name"));
            TRY(check_name(name, path));
            if (!previous.empty() && name <= previous)
                return invalid(fmt::format("directory '/{}' is not sorted: '{}' comes after '{}'",
                                           printable(path), printable(name), printable(previous)));
            TRY(m_in.expect("node"));
            auto parent_length = path.size();
            if (!path.empty()) path += '/';
            path += name;
            TRY(node(path, depth + 1));
            path.resize(parent_length);
            TRY(m_in.expect(")"));
            previous = std::move(name);
        }
        return m_visitor.directory_end();
    }

    Reader m_in;
    Visitor& m_visitor;
    const Limits& m_limits;
};

}  // namespace

Result<void> parse(Source& source, Visitor& visitor, const Limits& limits) {
    return Parser(source, visitor, limits).run();
}

}  // namespace larder::nar
