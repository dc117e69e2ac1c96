// Dumps each path given as a NAR and hashes it (what `larder push` and the
// server do per store path), printing one "sha256:<nix32> <size> <path>"
// line per path and the total on stderr.
#include <chrono>

#include <fmt/core.h>

#include "crypto/hash.hpp"
#include "crypto/sha256.hpp"
#include "nar/nar.hpp"

int main(int argc, char** argv) {
    using namespace larder;
    auto start = std::chrono::steady_clock::now();
    uint64_t total = 0;
    for (int i = 1; i < argc; ++i) {
        crypto::HashSink sink;
        auto r = nar::dump(argv[i], sink);
        if (!r) {
            fmt::print(stderr, "{}\n", r.error().message);
            return 1;
        }
        total += sink.size();
        fmt::print("{} {} {}\n", crypto::Hash{sink.digest()}.to_string(), sink.size(), argv[i]);
    }
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    fmt::print(stderr, "{} bytes in {:.3f} s\n", total, elapsed.count());
}
