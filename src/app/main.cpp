// The larder command line: each subcommand registers itself from its own file.
#include <CLI/CLI.hpp>

#include "app/commands.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Larder: a private Nix binary cache"};
    app.set_version_flag("--version", "larder " LARDER_VERSION);
    app.require_subcommand(1);
    larder::app::add_keygen_command(app);
    larder::app::add_nar_commands(app);
    larder::app::add_serve_command(app);
    larder::app::add_cache_commands(app);
    larder::app::add_login_command(app);
    larder::app::add_token_commands(app);
    larder::app::add_use_command(app);
    larder::app::add_push_commands(app);
    larder::app::add_gc_commands(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    return larder::app::exit_code();
}
