#include "codec/codec.hpp"

#include <fmt/core.h>

#include "util/strings.hpp"

namespace larder::codec {

// Defined in zstd.cpp, xz.cpp and bzip2.cpp.
std::unique_ptr<Sink> make_zstd_compressor(Sink& next, int level);
std::unique_ptr<Sink> make_zstd_decompressor(Sink& next);
std::unique_ptr<Sink> make_xz_compressor(Sink& next, int level);
std::unique_ptr<Sink> make_xz_decompressor(Sink& next);
std::unique_ptr<Sink> make_bzip2_decompressor(Sink& next);

namespace {

class PassThrough : public Sink {
public:
    explicit PassThrough(Sink& next) : m_next(next) {}
    Result<void> write(std::string_view data) override { return m_next.write(data); }
    Result<void> finish() override { return m_next.finish(); }

private:
    Sink& m_next;
};

}  // namespace

Result<Method> parse_method(std::string_view name) {
    if (name == "none") return Method::none;
    if (name == "zstd") return Method::zstd;
    if (name == "xz") return Method::xz;
    if (name == "bzip2") return Method::bzip2;
    return fail(ErrorCode::invalid_input,
                fmt::format("unsupported compression '{}' (supported: none, zstd, xz, bzip2)",
                            printable(name)));
}

std::string_view name(Method method) {
    switch (method) {
        case Method::none: return "none";
        case Method::zstd: return "zstd";
        case Method::xz: return "xz";
        case Method::bzip2: return "bzip2";
    }
    return "none";
}

std::string_view extension(Method method) {
    switch (method) {
        case Method::none: return "";
        case Method::zstd: return ".zst";
        case Method::xz: return ".xz";
        case Method::bzip2: return ".bz2";
    }
    return "";
}

Result<std::unique_ptr<Sink>> make_compressor(Method method, Sink& next, int level) {
    switch (method) {
        case Method::none: return std::unique_ptr<Sink>(std::make_unique<PassThrough>(next));
        case Method::zstd: return make_zstd_compressor(next, level);
        case Method::xz: return make_xz_compressor(next, level);
        case Method::bzip2: break;
    }
    return fail(ErrorCode::invalid_input, "compressing with bzip2 is not supported; use zstd or xz");
}

std::unique_ptr<Sink> make_decompressor(Method method, Sink& next) {
    switch (method) {
        case Method::none: return std::make_unique<PassThrough>(next);
        case Method::zstd: return make_zstd_decompressor(next);
        case Method::xz: return make_xz_decompressor(next);
        case Method::bzip2: return make_bzip2_decompressor(next);
    }
    return std::make_unique<PassThrough>(next);
}

}  // namespace larder::codec
