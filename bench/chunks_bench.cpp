// FastCDC on real NARs. Two modes:
//   larder_bench_chunks speed PATH...      chunking throughput (MB/s, one core)
//   larder_bench_chunks dedup MIN AVG MAX SINGLE LEVEL -- PATHS1... -- PATHS2...
// dedup stores every path of the first list, then the second, as the server
// does (chunks keyed by content, each compressed once with zstd at LEVEL), and
// prints the bytes the second list adds as a share of its NAR bytes, and the
// total stored bytes.
#include <chrono>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "chunk/fastcdc.hpp"
#include "codec/codec.hpp"
#include "crypto/encoding.hpp"
#include "crypto/sha256.hpp"
#include "nar/nar.hpp"

using namespace larder;

namespace {

std::string dump(const char* path) {
    StringSink sink;
    auto r = nar::dump(path, sink);
    if (!r) {
        fmt::print(stderr, "{}: {}\n", path, r.error().message);
        std::exit(1);
    }
    return std::move(sink.data());
}

int speed(int argc, char** argv) {
    std::vector<std::string> nars;
    uint64_t total = 0;
    for (int i = 2; i < argc; ++i) {
        nars.push_back(dump(argv[i]));
        total += nars.back().size();
    }
    chunk::FastCdc cdc(chunk::Params{});  // the server's defaults
    uint64_t chunks = 0;
    double best = 1e9;
    for (int run = 0; run < 5; ++run) {
        auto start = std::chrono::steady_clock::now();
        chunks = 0;
        for (const auto& n : nars) {
            auto* p = reinterpret_cast<const uint8_t*>(n.data());
            size_t left = n.size();
            while (left) {
                size_t c = cdc.cut(p, left);
                p += c;
                left -= c;
                ++chunks;
            }
        }
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    fmt::print("fastcdc: {} MB in {} chunks, {:.3f} s, {:.0f} MB/s on one core\n", total / 1000000, chunks, best,
               total / best / 1e6);
    return 0;
}

struct Store {
    chunk::Params params;
    size_t single_below;
    int level;
    std::set<std::string> keys;
    uint64_t stored = 0;

    // Returns the compressed bytes this NAR adds.
    uint64_t add(const std::string& nar) {
        uint64_t added = 0;
        chunk::Chunker chunker(params, single_below, [&](std::string_view c) -> Result<void> {
            auto key = crypto::to_base16(crypto::sha256(c));
            if (!keys.insert(key).second) return ok();
            StringSink out;
            auto z = codec::make_compressor(codec::Method::zstd, out, level);
            TRY((*z)->write(c));
            TRY((*z)->finish());
            added += out.data().size();
            return ok();
        });
        (void)chunker.write(nar);
        (void)chunker.finish();
        stored += added;
        return added;
    }
};

int dedup(int argc, char** argv) {
    if (argc < 9) return 2;
    Store store{{std::stoul(argv[2]), std::stoul(argv[3]), std::stoul(argv[4])}, std::stoul(argv[5]),
                std::stoi(argv[6]), {}, 0};
    int i = 8;  // argv[7] is "--"
    uint64_t nar1 = 0, nar2 = 0, added2 = 0;
    for (; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        auto n = dump(argv[i]);
        nar1 += n.size();
        store.add(n);
    }
    uint64_t after1 = store.stored;
    for (++i; i < argc; ++i) {
        auto n = dump(argv[i]);
        nar2 += n.size();
        added2 += store.add(n);
    }
    fmt::print("min {} avg {} max {} single<{} zstd {}: v1 {} MB NAR -> {} MB stored; v2 {} MB NAR adds {} MB "
               "({:.2f} %); {} chunks\n",
               argv[2], argv[3], argv[4], argv[5], argv[6], nar1 / 1000000, after1 / 1000000, nar2 / 1000000,
               added2 / 1000000, 100.0 * added2 / nar2, store.keys.size());
    fmt::print("stored_bytes {} {}\n", after1, store.stored);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2 && std::strcmp(argv[1], "speed") == 0) return speed(argc, argv);
    if (argc > 2 && std::strcmp(argv[1], "dedup") == 0) return dedup(argc, argv);
    fmt::print(stderr, "usage: larder_bench_chunks speed PATH... | dedup MIN AVG MAX SINGLE LEVEL -- P1... -- P2...\n");
    return 2;
}
