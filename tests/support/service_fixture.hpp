// A whole Larder without sockets or Nix: SQLite in a temporary directory, an
// in-memory blob store, both behind fault injection; the service, access
// control and the HTTP handler on top. `run` drives a request the way the
// session does (prepare, body, handle or upload).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cache/access.hpp"
#include "cache/service.hpp"
#include "codec/codec.hpp"
#include "crypto/encoding.hpp"
#include "crypto/hash.hpp"
#include "crypto/sha256.hpp"
#include "http/handlers.hpp"
#include "nar/nar.hpp"
#include "support/faults.hpp"
#include "util/framing.hpp"

namespace larder::test {

class ServiceFixture : public ::testing::Test {
protected:
    void SetUp() override {
        auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        m_dir = std::filesystem::temp_directory_path() /
                fmt::format("larder-svc-{}-{}-{}", getpid(), info->test_suite_name(), info->name());
        std::filesystem::remove_all(m_dir);
        std::filesystem::create_directories(m_dir);
        auto db = db::open_metadata_store((m_dir / "larder.db").string());
        ASSERT_TRUE(db) << db.error().message;
        m_db = std::move(*db);
        auto blobs = blob::open_blob_store("memory://");
        ASSERT_TRUE(blobs);
        m_blobs = std::move(*blobs);
        db_faults = std::make_unique<FaultyMetadataStore>(*m_db);
        blob_faults = std::make_unique<FaultyBlobStore>(*m_blobs);
        service = std::make_unique<cache::CacheService>(config(), *db_faults, *blob_faults);
        access = std::make_unique<cache::Access>(*db_faults);
        handler = std::make_unique<http::Handler>(*service, *access, http::HandlerConfig{});
        for (auto name : {"main", "other"}) ASSERT_TRUE(service->create_cache(name, {}));
        cache::Scope all;
        all.pull = all.push = all.remove = all.admin = true;
        auto token = access->create_token("admin", all, std::nullopt);
        ASSERT_TRUE(token);
        admin = token->secret;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    // Smaller chunks than the server's (256K/1M/4M): a test NAR of a few
    // hundred KB is then cut into several, as a real one of MBs is.
    static cache::Config config() {
        cache::Config c;
        c.chunk_params = chunk::Params{64 << 10, 256 << 10, 1 << 20};
        c.single_chunk_below = 256 << 10;
        return c;
    }

    // A NAR of one regular file holding `content`.
    std::string make_nar(const std::string& content) {
        auto file = m_dir / fmt::format("file-{}", ++m_files);
        std::ofstream(file, std::ios::binary) << content;
        StringSink nar;
        EXPECT_TRUE(nar::dump(file, nar));
        return nar.data();
    }

    // A store path name with a hash part of its own.
    std::string store_path(const std::string& name) {
        auto d = crypto::sha256(fmt::format("{}-{}", name, ++m_files));
        return fmt::format("/nix/store/{}-{}", crypto::to_nix32(std::span(d.data(), 20)), name);
    }
    static std::string hash_part(const std::string& path) { return path.substr(11, 32); }

    // A zstd file decompressed (a failure fails the test).
    static std::string decompress(const std::string& zstd) {
        StringSink out;
        auto d = codec::make_decompressor(codec::Method::zstd, out);
        EXPECT_TRUE(d->write(zstd) && d->finish());
        return out.data();
    }
    // The served file a narinfo names, fetched through the handler.
    std::string served_nar(const std::string& cache, const std::string& path) {
        auto info = run(http::Method::get, fmt::format("/{}/{}.narinfo", cache, hash_part(path)));
        EXPECT_EQ(info.status, 200u) << info.body;
        auto url = info.body.substr(info.body.find("URL: ") + 5);
        url = url.substr(0, url.find('\n'));
        auto nar = run(http::Method::get, fmt::format("/{}/{}", cache, url));
        EXPECT_EQ(nar.status, 200u) << nar.body;
        return nar.body;
    }

    static std::string narinfo(const std::string& path, const std::string& nar, const std::string& compression,
                               const std::string& url = "nar/x") {
        return fmt::format("StorePath: {}\nURL: {}\nCompression: {}\nNarHash: {}\nNarSize: {}\nReferences: \n", path,
                           url, compression, crypto::Hash{crypto::sha256(nar)}.to_string(), nar.size());
    }

    struct Reply {
        unsigned status;
        std::string body;
    };

    Reply run(http::Method method, const std::string& target, const std::string& body = "", bool frames = false,
              const std::string& token = "") {
        http::Request request;
        request.method = method;
        request.target = target;
        request.host = "cache.test";
        request.authorization = "Bearer " + (token.empty() ? admin : token);
        request.push_frames = frames;
        if (method == http::Method::put) request.content_length = body.size();  // as Nix's curl sends it
        auto prepared = handler->prepare(request);
        http::Response response;
        if (!prepared) {
            response = http::error_response(prepared.error());
        } else if (prepared->body == http::BodyKind::nar_upload) {
            response = upload(*prepared, request, body);
        } else {
            request.body = body;
            response = handler->handle(*prepared, request);
        }
        std::string text = response.body;
        if (response.stream) {
            StringSink sink;
            auto copied = copy(*response.stream, sink);
            if (!copied) return Reply{599, copied.error().message};
            text = sink.data();
        }
        return Reply{response.status, text};
    }

    // `larder push`'s body: the narinfo and upstream list, then the NAR.
    static std::string push_body(const std::string& info, const std::string& nar) {
        return length_prefixed(info) + length_prefixed("") + nar;
    }

    std::unique_ptr<FaultyMetadataStore> db_faults;
    std::unique_ptr<FaultyBlobStore> blob_faults;
    std::unique_ptr<cache::CacheService> service;
    std::unique_ptr<cache::Access> access;
    std::unique_ptr<http::Handler> handler;
    std::string admin;

private:
    http::Response upload(const http::Prepared& prepared, const http::Request& request, const std::string& body) {
        auto sink = handler->begin_nar_upload(prepared, request);
        if (!sink) return http::error_response(sink.error());
        for (size_t i = 0; i < body.size(); i += 1000) {
            auto r = (*sink)->write(std::string_view(body).substr(i, 1000));
            if (!r) return http::error_response(r.error());
        }
        auto r = (*sink)->finish();
        return r ? http::text_response(200, "") : http::error_response(r.error());
    }

protected:
    std::filesystem::path m_dir;  // the SQLite database is m_dir/larder.db

private:
    std::unique_ptr<db::MetadataStore> m_db;
    std::unique_ptr<blob::BlobStore> m_blobs;
    int m_files = 0;
};

}  // namespace larder::test
