// libFuzzer target: the NAR parser and the listing writer must reject or
// accept any input without crashing or allocating without bound.
#include <cstddef>
#include <cstdint>

#include "nar/nar.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    larder::StringSource source(std::string_view(reinterpret_cast<const char*>(data), size));
    larder::StringSink listing;
    auto lister = larder::nar::make_lister(listing);
    (void)larder::nar::parse(source, *lister);
    return 0;
}
