// The local Nix store as `larder push` sees it: Nix's own database, opened
// read-only (no `nix` process per path, no daemon needed when it is readable).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "nix/nar_info.hpp"
#include "util/result.hpp"

namespace larder::sqlite {
class Connection;
}

namespace larder::client {

// A valid path, as Nix registered it.
struct PathInfo {
    std::string path;  // full: /nix/store/<hash>-<name>
    int64_t id = 0;    // row in Nix's database; grows as paths are added
    std::string nar_hash;
    uint64_t nar_size = 0;
    std::vector<std::string> references;  // full paths, without the path itself
    std::string deriver;                  // full path, or empty
    std::vector<std::string> sigs;
    std::string ca;
    bool self_reference = false;
};

class NixStore {
public:
    ~NixStore();

    // $NIX_STATE_DIR/db/db.sqlite (default /nix/var/nix/db/db.sqlite) and
    // $NIX_STORE_DIR (default /nix/store).
    static Result<std::unique_ptr<NixStore>> open();
    static Result<std::unique_ptr<NixStore>> open(const std::string& db_path, std::string store_dir);

    const std::string& store_dir() const { return m_store_dir; }

    // "./result", a store path, or a file inside one -> its store path.
    Result<std::string> resolve(std::string_view argument) const;
    // not_found if the path is not valid in this store.
    Result<PathInfo> query(std::string_view path);
    // The paths and everything they reference, each once, every path after
    // the paths it references.
    Result<std::vector<PathInfo>> closure(const std::vector<std::string>& paths);
    // The paths registered after row `after` (see PathInfo::id), oldest first.
    Result<std::vector<PathInfo>> added_since(int64_t after);
    Result<int64_t> last_id();
    // The valid output paths of a derivation (by the .drv's store path).
    Result<std::vector<std::string>> derivation_outputs(std::string_view drv_path);

    // The narinfo `larder push` sends: what the store knows, with the NAR
    // compressed by `compression`; URL and file fields are the server's job.
    Result<nix::NarInfo> to_nar_info(const PathInfo& info, std::string_view compression) const;

private:
    NixStore(std::unique_ptr<sqlite::Connection> db, std::string store_dir);
    Result<PathInfo> read_row(int64_t id, std::string path);

    std::unique_ptr<sqlite::Connection> m_db;
    std::string m_store_dir;
};

}  // namespace larder::client
