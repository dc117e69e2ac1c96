#include "nix/store_path.hpp"

#include <gtest/gtest.h>

using namespace larder::nix;

TEST(StorePath, ParsesFullAndBaseNames) {
    auto p = StorePath::parse("/nix/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-hello-2.12+x?=_.");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_EQ(p->hash_part(), "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb");
    EXPECT_EQ(p->name(), "hello-2.12+x?=_.");
    EXPECT_EQ(p->full(), "/nix/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-hello-2.12+x?=_.");
    EXPECT_TRUE(StorePath::parse("/tmp/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb-a", "/tmp/store"));
}

TEST(StorePath, RejectsWhatNixRejects) {
    std::string h = "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb";
    for (std::string bad : std::initializer_list<std::string>{"/nix/store/" + h, "/nix/store/" + h + "-", "/nix/store/short-x",
                     "/nix/store/" + h + "-a/b", "/nix/stor/" + h + "-a", "/nix/store/" + h + "-a b",
                     "/nix/store/0c5ykcv9xf0v3y41ic79ndw8ngq5s0qe-a", "/nix/store/" + h + "-..",
                     "/nix/store/" + h + "-" + std::string(212, 'a'), "/nix/store/" + h + "_a"})
        EXPECT_FALSE(StorePath::parse(bad)) << bad;
    EXPECT_TRUE(StorePath::parse("/nix/store/" + h + "-" + std::string(211, 'a')));
}

TEST(StorePath, HashPart) {
    EXPECT_TRUE(is_valid_hash_part("0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb"));
    EXPECT_FALSE(is_valid_hash_part("0c5ykcv9xf0v3y41ic79ndw8ngq5s0q"));
    EXPECT_FALSE(is_valid_hash_part("../../../../../../../../etc/pass"));
}
