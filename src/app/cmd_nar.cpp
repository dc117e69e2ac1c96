// larder nar dump PATH | nar restore DIR | nar ls
#include <unistd.h>

#include <filesystem>

#include <fmt/core.h>

#include "app/commands.hpp"
#include "nar/nar.hpp"
#include "util/io.hpp"

namespace larder::app {

namespace {

Result<void> nar_dump(const std::string& path) {
    FdSink out(STDOUT_FILENO);
    TRY(nar::dump(path, out));
    return out.finish();
}

Result<void> nar_restore(const std::string& dir) {
    if (std::filesystem::exists(std::filesystem::symlink_status(dir)))
        return fail(ErrorCode::conflict, fmt::format("'{}' already exists", dir));
    FdSource in(STDIN_FILENO);
    auto restorer = nar::make_restorer(dir);
    return nar::parse(in, *restorer);
}

Result<void> nar_ls() {
    FdSource in(STDIN_FILENO);
    FdSink out(STDOUT_FILENO);
    auto lister = nar::make_lister(out);
    TRY(nar::parse(in, *lister));
    return out.finish();
}

}  // namespace

void add_nar_commands(CLI::App& app) {
    auto* nar = app.add_subcommand("nar", "Work with NAR archives");
    nar->require_subcommand(1);

    auto path = std::make_shared<std::string>();
    auto* dump = nar->add_subcommand("dump", "Write the NAR of PATH to standard output");
    dump->add_option("path", *path, "File, directory or symlink")->required();
    dump->callback([path] { report(nar_dump(*path)); });

    auto dir = std::make_shared<std::string>();
    auto* restore = nar->add_subcommand("restore", "Unpack a NAR from standard input into DIR");
    restore->add_option("dir", *dir, "Directory to create (must not exist)")->required();
    restore->callback([dir] { report(nar_restore(*dir)); });

    auto* ls = nar->add_subcommand("ls", "Print the .ls listing JSON of a NAR on standard input");
    ls->callback([] { report(nar_ls()); });
}

}  // namespace larder::app
