#include "nix/nar_info.hpp"

#include <gtest/gtest.h>

#include <filesystem>

#include "util/file.hpp"

using namespace larder;
using namespace larder::nix;

namespace {

const std::string k_written_by_nix =
    "StorePath: /nix/store/041crnbb28hn393yjswzidnxlpb92kwp-t1\n"
    "URL: nar/1n2c4hz6lhrybasrg2pbz9bswimg5b07hnzfsy4qdjinm7rkrgsb.nar.xz\n"
    "Compression: xz\n"
    "FileHash: sha256:1n2c4hz6lhrybasrg2pbz9bswimg5b07hnzfsy4qdjinm7rkrgsb\n"
    "FileSize: 208\n"
    "NarHash: sha256:15wgwvs7384grs630pp3skjz0f6qd097z2v0x84kzc0ksp0ypbia\n"
    "NarSize: 680\n"
    "References: \n"
    "CA: fixed:r:sha256:15wgwvs7384grs630pp3skjz0f6qd097z2v0x84kzc0ksp0ypbia\n";

}  // namespace

TEST(NarInfo, RoundTripsWhatNixWrites) {
    auto info = parse_nar_info(k_written_by_nix);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->render(), k_written_by_nix);
    EXPECT_EQ(info->nar_size, 680u);
    EXPECT_EQ(info->compression, "xz");
}

TEST(NarInfo, IsLenientLikeNix) {
    // Any field order, unknown keys, no final newline, no space after ':',
    // other hash encodings, no Compression (bzip2), no References line.
    std::string text =
        "NarSize:680\nX-Unknown: 1\nNarHash: sha256-" "ZJFD7Y3Mq+mS6XsXy8c36jGnzHzEd+dHvYhs5s8VAqE=\n"
        "URL: nar/x.nar\nStorePath: /nix/store/041crnbb28hn393yjswzidnxlpb92kwp-t1\n"
        "Deriver: unknown-deriver\nReferences: 041crnbb28hn393yjswzidnxlpb92kwp-t1  "
        "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-b";
    auto info = parse_nar_info(text);
    ASSERT_TRUE(info) << info.error().message;
    EXPECT_EQ(info->compression, "bzip2");
    EXPECT_FALSE(info->deriver);
    ASSERT_EQ(info->references.size(), 2u);
    EXPECT_EQ(info->references[0].name(), "t1");  // sorted by base name
    EXPECT_EQ(info->references[1].name(), "b");
}

TEST(NarInfo, SignaturesCoverTheFingerprint) {
    auto info = *parse_nar_info(k_written_by_nix);
    auto key = crypto::SecretKey::generate("larder-test-1");
    info.sign(key);
    info.sign(key);  // replaces, does not duplicate
    ASSERT_EQ(info.sigs.size(), 1u);
    EXPECT_TRUE(info.verify(key.public_key()));
    auto reparsed = *parse_nar_info(info.render());
    EXPECT_TRUE(reparsed.verify(key.public_key()));
    reparsed.nar_size += 1;
    EXPECT_FALSE(reparsed.verify(key.public_key()));
    EXPECT_FALSE(info.verify(crypto::SecretKey::generate("larder-test-1").public_key()));
}

TEST(NarInfo, InvalidCorpusIsRejectedWithSpecificMessages) {
    namespace fs = std::filesystem;
    int cases = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(LARDER_TEST_DATA) / "invalid")) {
        if (entry.path().extension() != ".narinfo") continue;
        auto text = *read_file(entry.path());
        auto expected = *read_file(fs::path(entry.path()).replace_extension(".expected"));
        expected.pop_back();
        auto info = parse_nar_info(text);
        ASSERT_FALSE(info) << entry.path();
        EXPECT_EQ(info.error().code, ErrorCode::invalid_input);
        EXPECT_NE(info.error().message.find(expected), std::string::npos)
            << entry.path() << ": got '" << info.error().message << "', expected '" << expected << "'";
        ++cases;
    }
    EXPECT_GE(cases, 20);
}

TEST(CacheInfo, RendersAndParses) {
    CacheInfo info;
    info.priority = 30;
    EXPECT_EQ(info.render(), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");
    auto parsed = parse_cache_info("StoreDir: /tmp/s\njunk\nWantMassQuery: 0\nPriority: 7\n");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->store_dir, "/tmp/s");
    EXPECT_FALSE(parsed->want_mass_query);
    EXPECT_EQ(parsed->priority, 7);
    EXPECT_FALSE(parse_cache_info("Priority: high\n"));
}

// Security review L13: what parses leniently but would break or burden
// clients is refused when a client uploads it.
TEST(NarInfoUpload, StricterRulesForUploadedNarinfos) {
    std::string base =
        "StorePath: /nix/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-hello\nURL: nar/x.nar\nCompression: none\n"
        "NarHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3\nNarSize: 120\nReferences: \n";
    auto check = [&](const std::string& extra) {
        auto info = larder::nix::parse_nar_info(base + extra);
        EXPECT_TRUE(info) << extra;
        return info ? larder::nix::check_uploaded(*info) : larder::Result<void>(larder::ok());
    };
    std::string sig = "c-1:" + std::string(86, 'A') + "==";
    EXPECT_TRUE(check("Sig: " + sig + "\nSystem: x86_64-linux\nCA: fixed:r:sha256:abc\n"));
    std::string many;
    for (int i = 0; i < 17; ++i) many += "Sig: " + sig + "\n";
    EXPECT_FALSE(check(many));
    EXPECT_FALSE(check("Sig: c-1:short\n"));
    EXPECT_FALSE(check("System: x86 64 linux\n"));
    EXPECT_FALSE(check("CA: whatever\n"));
}
