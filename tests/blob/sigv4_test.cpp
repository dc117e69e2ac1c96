// SigV4 against AWS's published examples.
#include "blob/sigv4.hpp"

#include <gtest/gtest.h>

using namespace larder::blob;

TEST(SigV4, AwsTestSuiteGetVanilla) {
    SignedRequest r{"GET", "example.amazonaws.com", "/", {}, {{"X-Amz-Date", "20150830T123600Z"}}, hex_sha256("")};
    Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
    EXPECT_EQ(canonical_request(r, "20150830T123600Z", false),
              "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(authorization(r, c, "us-east-1", "service", "20150830T123600Z"),
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
              "SignedHeaders=host;x-amz-date, "
              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// The GET Object example of the S3 API reference ("Signature Calculations for
// the Authorization Header").
TEST(SigV4, S3GetObjectWithRange) {
    auto empty = hex_sha256("");
    SignedRequest r{"GET",
                    "examplebucket.s3.amazonaws.com",
                    "/test.txt",
                    {},
                    {{"Range", "bytes=0-9"}, {"x-amz-content-sha256", empty}, {"x-amz-date", "20130524T000000Z"}},
                    empty};
    Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
    EXPECT_EQ(authorization(r, c, "us-east-1", "s3", "20130524T000000Z"),
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
              "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
              "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// The GET Bucket (list objects) example: query parameters sorted and encoded.
TEST(SigV4, S3ListObjectsQuery) {
    auto empty = hex_sha256("");
    SignedRequest r{"GET",
                    "examplebucket.s3.amazonaws.com",
                    "/",
                    {{"prefix", "J"}, {"max-keys", "2"}},
                    {{"x-amz-content-sha256", empty}, {"x-amz-date", "20130524T000000Z"}},
                    empty};
    Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
    EXPECT_EQ(authorization(r, c, "us-east-1", "s3", "20130524T000000Z"),
              "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
              "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
              "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4, UriEncoding) {
    EXPECT_EQ(uri_encode("a b/c~d*", false), "a%20b%2Fc~d%2A");
    EXPECT_EQ(uri_encode("/x/y z", true), "/x/y%20z");
}
