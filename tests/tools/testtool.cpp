// Helper for the end-to-end scripts: checks Larder's narinfo handling against
// files the real Nix wrote.
//   narinfo-roundtrip FILE...        parse + render must be byte-identical
//   narinfo-sign SECRET-KEY FILE...  add Larder's signature, rewrite in place
//   narinfo-verify PUBLIC-KEY FILE...  every file must carry a valid signature
#include <fmt/core.h>

#include <string_view>

#include "crypto/keys.hpp"
#include "nix/nar_info.hpp"
#include "util/file.hpp"

using namespace larder;

namespace {

int die(std::string_view message) {
    fmt::print(stderr, "testtool: {}\n", message);
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return die("usage: testtool COMMAND ARGS...");
    std::string_view command = argv[1];
    int first_file = command == "narinfo-roundtrip" ? 2 : 3;
    std::optional<crypto::SecretKey> secret;
    std::optional<crypto::PublicKey> pub;
    if (command == "narinfo-sign" || command == "narinfo-verify") {
        auto text = read_file(argv[2]);
        if (!text) return die(text.error().message);
        if (command == "narinfo-sign") {
            auto k = crypto::parse_secret_key(*text);
            if (!k) return die(k.error().message);
            secret = *k;
        } else {
            auto k = crypto::parse_public_key(*text);
            if (!k) return die(k.error().message);
            pub = *k;
        }
    } else if (command != "narinfo-roundtrip") {
        return die(fmt::format("unknown command '{}'", command));
    }
    for (int i = first_file; i < argc; ++i) {
        auto text = read_file(argv[i]);
        if (!text) return die(text.error().message);
        auto info = nix::parse_nar_info(*text);
        if (!info) return die(fmt::format("{}: {}", argv[i], info.error().message));
        if (command == "narinfo-roundtrip" && info->render() != *text)
            return die(fmt::format("{}: re-rendered differently:\n{}---\n{}", argv[i], *text,
                                   info->render()));
        if (secret) {
            info->sign(*secret);
            auto w = write_file_atomic(argv[i], info->render());
            if (!w) return die(w.error().message);
        }
        if (pub && !info->verify(*pub))
            return die(fmt::format("{}: no valid signature by '{}'", argv[i], pub->name));
    }
    return 0;
}
