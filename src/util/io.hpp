// Byte streams: a Source is read from until it returns 0, a Sink is written to
// and then finished. Every stage of a pipeline (hash, compress, chunk, upload)
// is one of these, so stages compose and each is testable alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace larder {

// Bytes of an open file, for sendfile().
struct FileRegion {
    int fd;
    uint64_t offset;
    size_t length;
};

class Source {
public:
    virtual ~Source() = default;
    // Reads up to `len` bytes into `buf`; 0 means end of stream.
    virtual Result<size_t> read(char* buf, size_t len) = 0;
    // The next up to `max` bytes as a region of an open file, consumed as if
    // read; the fd stays open until the next call. nullopt when they are not
    // a file's (then read()); a length of 0 at the end of the stream.
    virtual Result<std::optional<FileRegion>> take_file_region(size_t /*max*/) {
        return std::optional<FileRegion>();
    }
    // The next up to `max` bytes in the source's own memory, consumed as if
    // read, saving read()'s copy; valid until the next call on this source.
    // nullopt when it has no memory to lend (then read()); an empty view at
    // the end of the stream.
    virtual Result<std::optional<std::string_view>> borrow(size_t /*max*/) {
        return std::optional<std::string_view>();
    }
};

class Sink {
public:
    virtual ~Sink() = default;
    virtual Result<void> write(std::string_view data) = 0;
    // Flushes whatever is buffered; the stream is complete after this.
    virtual Result<void> finish() { return ok(); }
};

// Reads exactly `len` bytes, or fails with `corrupt` ("unexpected end of ...").
Result<void> read_exact(Source& source, char* buf, size_t len);

// Copies a whole source into a sink (not finishing the sink).
Result<void> copy(Source& source, Sink& sink, size_t buffer_size = 256 * 1024);

class StringSource : public Source {
public:
    explicit StringSource(std::string_view data) : m_data(data) {}
    Result<size_t> read(char* buf, size_t len) override;

private:
    std::string_view m_data;
};

class StringSink : public Sink {
public:
    Result<void> write(std::string_view data) override {
        m_data.append(data);
        return ok();
    }
    std::string& data() { return m_data; }

private:
    std::string m_data;
};

// A file descriptor it does not own (stdin, stdout, an open file).
class FdSource : public Source {
public:
    explicit FdSource(int fd) : m_fd(fd) {}
    Result<size_t> read(char* buf, size_t len) override;

private:
    int m_fd;
};

// Buffers writes to a file descriptor it does not own.
class FdSink : public Sink {
public:
    explicit FdSink(int fd, size_t buffer_size = 256 * 1024) : m_fd(fd) {
        m_buffer.reserve(buffer_size);
    }
    Result<void> write(std::string_view data) override;
    Result<void> finish() override;

private:
    Result<void> write_all(std::string_view data);
    int m_fd;
    std::string m_buffer;
};

// Counts the bytes passing through, optionally forwarding them.
class CountingSink : public Sink {
public:
    explicit CountingSink(Sink* next = nullptr) : m_next(next) {}
    Result<void> write(std::string_view data) override {
        m_count += data.size();
        return m_next ? m_next->write(data) : ok();
    }
    Result<void> finish() override { return m_next ? m_next->finish() : ok(); }
    uint64_t count() const { return m_count; }

private:
    Sink* m_next;
    uint64_t m_count = 0;
};

// Writes every byte to two sinks. finish() finishes both, or neither when
// the caller finishes them itself, in an order of its own.
class TeeSink : public Sink {
public:
    TeeSink(Sink& a, Sink& b, bool finish_both = true) : m_a(a), m_b(b), m_finish_both(finish_both) {}
    Result<void> write(std::string_view data) override {
        TRY(m_a.write(data));
        return m_b.write(data);
    }
    Result<void> finish() override {
        if (!m_finish_both) return ok();
        TRY(m_a.finish());
        return m_b.finish();
    }

private:
    Sink& m_a;
    Sink& m_b;
    bool m_finish_both;
};

}  // namespace larder
