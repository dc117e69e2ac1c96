// NAR (Nix ARchive): the serialisation of a file system tree whose sha256 is a
// store path's NarHash. Writer, bounded streaming parser (a visitor), restorer
// and the .ls listing. Grammar and rules: PROTOCOL.md §4.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <memory>
#include <string_view>

#include "util/io.hpp"

namespace larder::nar {

// Bounds on what a parser accepts, so hostile input cannot exhaust memory or
// the stack. File contents are streamed, so their size needs no bound.
struct Limits {
    size_t max_depth = 256;
    size_t max_name_length = 255;
    size_t max_target_length = 4095;
};

enum class EntryType { regular, directory, symlink };

// Receives a NAR's contents in order. `path` is relative to the root: "" for
// the root itself, then "a", "a/b", ...; names are already validated.
class Visitor {
public:
    virtual ~Visitor() = default;
    virtual Result<void> directory_begin(std::string_view path) = 0;
    virtual Result<void> directory_end() { return ok(); }
    // `nar_offset` is where the contents start in the NAR.
    virtual Result<void> regular_begin(std::string_view path, bool executable, uint64_t size,
                                       uint64_t nar_offset) = 0;
    virtual Result<void> regular_data(std::string_view data) = 0;
    virtual Result<void> regular_end() { return ok(); }
    virtual Result<void> symlink(std::string_view path, std::string_view target) = 0;
};

// Parses one NAR from `source`, which must end with it. Every violation is an
// `invalid_input` error whose message starts with "invalid NAR: ".
Result<void> parse(Source& source, Visitor& visitor, const Limits& limits = {});

// Writes the NAR of `path` (file, directory or symlink) into `sink`, streaming
// file contents in bounded memory; holes in sparse files are not read.
Result<void> dump(const std::filesystem::path& path, Sink& sink);

// A visitor that recreates the tree at `target`, which must not exist yet.
std::unique_ptr<Visitor> make_restorer(std::filesystem::path target);

// A visitor that writes the .ls listing JSON, byte-identical to Nix's.
std::unique_ptr<Visitor> make_lister(Sink& out);

// A visitor that does nothing, for validating a NAR.
class NullVisitor : public Visitor {
public:
    Result<void> directory_begin(std::string_view) override { return ok(); }
    Result<void> regular_begin(std::string_view, bool, uint64_t, uint64_t) override { return ok(); }
    Result<void> regular_data(std::string_view) override { return ok(); }
    Result<void> symlink(std::string_view, std::string_view) override { return ok(); }
};

}  // namespace larder::nar
