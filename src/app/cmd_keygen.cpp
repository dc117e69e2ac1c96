// larder keygen NAME --secret-key FILE --public-key FILE
#include <filesystem>

#include <fmt/core.h>

#include "app/commands.hpp"
#include "crypto/keys.hpp"
#include "util/file.hpp"

namespace larder::app {

namespace {

struct KeygenOptions {
    std::string name;
    std::string secret_file;
    std::string public_file;
    bool force = false;
};

Result<void> keygen(const KeygenOptions& o) {
    if (!crypto::is_valid_key_name(o.name))
        return fail(ErrorCode::invalid_input,
                    fmt::format("invalid key name '{}': it must be non-empty, without ':' or spaces",
                                o.name));
    for (const auto& file : {o.secret_file, o.public_file})
        if (!o.force && std::filesystem::exists(file))
            return fail(ErrorCode::conflict,
                        fmt::format("'{}' exists; pass --force to overwrite it", file));
    auto secret = crypto::SecretKey::generate(o.name);
    TRY(write_file_atomic(o.secret_file, secret.to_string(), 0600));
    return write_file_atomic(o.public_file, secret.public_key().to_string(), 0644);
}

}  // namespace

void add_keygen_command(CLI::App& app) {
    auto opts = std::make_shared<KeygenOptions>();
    auto* cmd = app.add_subcommand("keygen", "Generate an ed25519 signing key pair in Nix's format");
    cmd->add_option("name", opts->name, "Key name, e.g. cache.example.org-1")->required();
    cmd->add_option("--secret-key", opts->secret_file, "Where to write the secret key (mode 0600)")
        ->required();
    cmd->add_option("--public-key", opts->public_file, "Where to write the public key")->required();
    cmd->add_flag("--force", opts->force, "Overwrite existing files");
    cmd->callback([opts] { report(keygen(*opts)); });
}

}  // namespace larder::app
