// Where client commands find their server and token: --server/--token flags,
// then LARDER_SERVER/LARDER_TOKEN, then ~/.config/larder/config.toml.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "client/http_client.hpp"

namespace larder::client {

std::filesystem::path config_path();  // $XDG_CONFIG_HOME/larder/config.toml

// Saves a named login and makes it the default (mode 0600).
Result<void> save_login(std::string_view name, std::string_view url, std::string_view token);

Result<ServerLogin> resolve_login(const std::optional<std::string>& server_flag,
                                  const std::optional<std::string>& token_flag);

}  // namespace larder::client
