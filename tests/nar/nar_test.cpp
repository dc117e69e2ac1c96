#include "nar/nar.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "crypto/sha256.hpp"
#include "util/file.hpp"

using namespace larder;
namespace fs = std::filesystem;

namespace {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "larder-test-XXXXXX").string();
        m_path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(m_path); }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

void write(const fs::path& p, std::string_view contents, bool executable = false) {
    std::ofstream(p, std::ios::binary) << contents;
    if (executable) fs::permissions(p, fs::perms::owner_exec, fs::perm_options::add);
}

std::string dump_to_string(const fs::path& p) {
    StringSink sink;
    auto r = nar::dump(p, sink);
    EXPECT_TRUE(r) << r.error().message;
    return sink.data();
}

void make_tree(const fs::path& root) {
    fs::create_directories(root / "bin");
    fs::create_directories(root / "empty-dir");
    fs::create_directories(root / "deep/a/b/c/d/e/f/g");
    write(root / "bin/tool", "#!/bin/sh\necho hi\n", true);
    write(root / "empty-file", "");
    write(root / "deep/a/b/c/d/e/f/g/leaf", std::string(100000, 'x'));
    write(root / "ünïcödé-名前", "unicode\n");
    fs::create_symlink("bin/tool", root / "link");
    fs::create_symlink("/nonexistent/target", root / "dangling");
}

// Lends its bytes (Source::borrow) a few at a time, so that tokens, lengths
// and contents straddle the parser's windows.
class LendingSource : public Source {
public:
    explicit LendingSource(std::string_view data) : m_data(data) {}
    Result<size_t> read(char*, size_t) override { return fail(ErrorCode::internal, "read() called on a lender"); }
    Result<std::optional<std::string_view>> borrow(size_t max) override {
        size_t n = std::min({max, m_data.size(), 1 + m_calls++ % 7});
        auto lent = m_data.substr(0, n);
        m_data.remove_prefix(n);
        return std::optional<std::string_view>(lent);
    }

private:
    std::string_view m_data;
    size_t m_calls = 0;
};

Result<std::string> listing(Source& source) {
    StringSink out;
    auto lister = nar::make_lister(out);
    TRY(nar::parse(source, *lister));
    return out.data();
}

}  // namespace

TEST(Nar, SingleFileHasTheKnownLayout) {
    TempDir dir;
    write(dir.path() / "f", "hello");
    auto nar = dump_to_string(dir.path() / "f");
    // magic(8+16) ( type regular contents len + "hello"+pad )
    EXPECT_EQ(nar.size(), 24u + 16 + 16 + 16 + 16 + 8 + 8 + 16);
    EXPECT_EQ(nar.substr(8, 13), "nix-archive-1");
}

TEST(Nar, DirectoryFirstFileContentsAtOffset232) {
    // The test vector of Nix's tests/binary-cache.sh.
    TempDir dir;
    fs::create_directory(dir.path() / "t");
    write(dir.path() / "t/bar", "abc");
    auto nar = dump_to_string(dir.path() / "t");
    EXPECT_EQ(nar.substr(232, 3), "abc");
    StringSink listing;
    StringSource source(nar);
    auto lister = nar::make_lister(listing);
    ASSERT_TRUE(nar::parse(source, *lister));
    EXPECT_EQ(listing.data(),
              R"({"version":1,"root":{"type":"directory","entries":{"bar":{"type":"regular","size":3,"narOffset":232}}}})");
}

TEST(Nar, DumpRestoreDumpRoundTrips) {
    TempDir dir;
    make_tree(dir.path() / "tree");
    auto nar = dump_to_string(dir.path() / "tree");
    StringSource source(nar);
    auto restorer = nar::make_restorer(dir.path() / "copy");
    auto r = nar::parse(source, *restorer);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(dump_to_string(dir.path() / "copy"), nar);
    EXPECT_TRUE(fs::status(dir.path() / "copy/bin/tool").permissions() != fs::perms::none);
    EXPECT_EQ(fs::read_symlink(dir.path() / "copy/link"), "bin/tool");
}

TEST(Nar, RestoreRefusesAnExistingTarget) {
    TempDir dir;
    write(dir.path() / "f", "x");
    auto nar = dump_to_string(dir.path() / "f");
    StringSource source(nar);
    auto restorer = nar::make_restorer(dir.path() / "f");
    auto r = nar::parse(source, *restorer);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::conflict);
}

TEST(Nar, SparseFileDumpsAsZerosAndRestoresSparse) {
    TempDir dir;
    auto p = dir.path() / "sparse";
    {
        UniqueFd fd(::open(p.c_str(), O_CREAT | O_WRONLY, 0644));
        ASSERT_EQ(::pwrite(fd.get(), "data", 4, 1 << 20), 4);
        ASSERT_EQ(::ftruncate(fd.get(), 8 << 20), 0);
    }
    crypto::HashSink sparse_hash;
    ASSERT_TRUE(nar::dump(p, sparse_hash));
    // The same bytes written densely.
    std::string dense(8 << 20, '\0');
    dense.replace(1 << 20, 4, "data");
    write(dir.path() / "dense", dense);
    crypto::HashSink dense_hash;
    ASSERT_TRUE(nar::dump(dir.path() / "dense", dense_hash));
    EXPECT_EQ(sparse_hash.digest(), dense_hash.digest());

    auto nar = dump_to_string(p);
    StringSource source(nar);
    auto restorer = nar::make_restorer(dir.path() / "restored");
    ASSERT_TRUE(nar::parse(source, *restorer));
    struct stat st {};
    ASSERT_EQ(::stat((dir.path() / "restored").c_str(), &st), 0);
    EXPECT_EQ(st.st_size, 8 << 20);
    EXPECT_LT(st.st_blocks * 512, 1 << 20);
}

TEST(Nar, InvalidCorpusIsRejectedWithSpecificMessages) {
    int cases = 0;
    for (const auto& entry : fs::directory_iterator(fs::path(LARDER_TEST_DATA) / "invalid")) {
        if (entry.path().extension() != ".nar") continue;
        auto data = *read_file(entry.path());
        auto expected = *read_file(fs::path(entry.path()).replace_extension(".expected"));
        expected.pop_back();
        StringSource source(data);
        nar::NullVisitor visitor;
        auto r = nar::parse(source, visitor);
        ASSERT_FALSE(r) << entry.path();
        EXPECT_EQ(r.error().code, ErrorCode::invalid_input) << entry.path();
        EXPECT_EQ(r.error().message.rfind("invalid NAR: ", 0), 0u) << r.error().message;
        EXPECT_NE(r.error().message.find(expected), std::string::npos)
            << entry.path() << ": got '" << r.error().message << "', expected '" << expected << "'";
        ++cases;
    }
    EXPECT_GE(cases, 20);
}

TEST(Nar, LentBytesParseLikeReadOnes) {
    TempDir dir;
    make_tree(dir.path() / "tree");
    auto nar = dump_to_string(dir.path() / "tree");
    StringSource read(nar);
    LendingSource lent(nar);
    auto a = listing(read), b = listing(lent);
    ASSERT_TRUE(a) << a.error().message;
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(*a, *b);
    for (const auto& entry : fs::directory_iterator(fs::path(LARDER_TEST_DATA) / "invalid")) {
        if (entry.path().extension() != ".nar") continue;
        auto data = *read_file(entry.path());
        StringSource read_bad(data);
        LendingSource lent_bad(data);
        auto x = listing(read_bad), y = listing(lent_bad);
        ASSERT_FALSE(x);
        ASSERT_FALSE(y) << entry.path();
        EXPECT_EQ(x.error().message, y.error().message) << entry.path();
    }
}

TEST(Nar, RestoreOfInvalidNarNeverEscapesTarget) {
    TempDir dir;
    auto data = *read_file(fs::path(LARDER_TEST_DATA) / "invalid/dotdot-name.nar");
    StringSource source(data);
    auto restorer = nar::make_restorer(dir.path() / "out");
    EXPECT_FALSE(nar::parse(source, *restorer));
    EXPECT_FALSE(fs::exists(dir.path() / "a"));
}
