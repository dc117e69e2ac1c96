#!/usr/bin/env python3
"""Writes the invalid-input corpus: NARs and narinfos that Larder must reject.

Each case is invalid/<name>.nar or invalid/<name>.narinfo, next to
invalid/<name>.expected holding a fragment the error message must contain.
Run it again after editing; the outputs are committed.
"""
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "invalid")


def s(b, pad=b"\0"):
    if isinstance(b, str):
        b = b.encode()
    n = len(b)
    return struct.pack("<Q", n) + b + pad * ((8 - n % 8) % 8)


def reg(contents=b"hi", executable=False):
    out = s("(") + s("type") + s("regular")
    if executable:
        out += s("executable") + s("")
    return out + s("contents") + s(contents) + s(")")


def entry(name, node):
    return s("entry") + s("(") + s("name") + s(name) + s("node") + node + s(")")


def dir_(*entries):
    return s("(") + s("type") + s("directory") + b"".join(entries) + s(")")


def nar(node):
    return s("nix-archive-1") + node


GOOD = nar(dir_(entry("a", reg()), entry("b", reg(b"x" * 9))))

NARS = {
    "empty": (b"", "unexpected end of input at offset 0"),
    "bad-magic": (s("nix-archive-2") + reg(), "does not start with 'nix-archive-1'"),
    "truncated-header": (GOOD[:20], "unexpected end of input"),
    "truncated-contents": (GOOD[:-60], "unexpected end of input"),
    "truncated-end": (GOOD[:-8], "unexpected end of input"),
    "unsorted": (nar(dir_(entry("b", reg()), entry("a", reg()))), "is not sorted: 'a' comes after 'b'"),
    "duplicate-name": (nar(dir_(entry("a", reg()), entry("a", reg()))), "is not sorted: 'a' comes after 'a'"),
    "dotdot-name": (nar(dir_(entry("..", reg()))), "entry name '..' in directory '/' is '.' or '..'"),
    "dot-name": (nar(dir_(entry(".", reg()))), "is '.' or '..'"),
    "slash-name": (nar(dir_(entry("a/b", reg()))), "contains '/'"),
    "nul-name": (nar(dir_(entry("a\0b", reg()))), "contains a NUL byte"),
    "empty-name": (nar(dir_(entry("", reg()))), "entry name '' in directory '/' is empty"),
    "nonzero-padding": (s("nix-archive-1") + s("(") + s("type") + s("regular") + s("contents") + s("abc", pad=b"\x01") + s(")"),
                        "non-zero padding at offset"),
    "absurd-length": (struct.pack("<Q", 2**62), "magic at offset 0 is 4611686018427387904 bytes long, the limit is 16"),
    "absurd-name-length": (s("nix-archive-1") + s("(") + s("type") + s("directory") + s("entry") + s("(") + s("name") + struct.pack("<Q", 2**40),
                           "entry name at offset 128 is 1099511627776 bytes long, the limit is 255"),
    "absurd-contents-length": (s("nix-archive-1") + s("(") + s("type") + s("regular") + s("contents") + struct.pack("<Q", 2**63) + b"abc",
                               "unexpected end of input"),
    "long-name": (nar(dir_(entry("n" * 256, reg()))), "is 256 bytes long, the limit is 255"),
    "unknown-type": (nar(s("(") + s("type") + s("fifo") + s(")")), "unknown node type 'fifo'"),
    "contents-before-executable": (nar(s("(") + s("type") + s("regular") + s("contents") + s("x") + s("executable") + s("") + s(")")),
                                   "expected ')' at offset"),
    "missing-contents": (nar(s("(") + s("type") + s("regular") + s(")")), "expected 'contents'"),
    "empty-symlink": (nar(s("(") + s("type") + s("symlink") + s("target") + s("") + s(")")), "has an empty target"),
    "long-symlink": (nar(s("(") + s("type") + s("symlink") + s("target") + s("x" * 4096) + s(")")), "symlink target at offset"),
    "trailing-data": (GOOD + b"\0" * 8, "trailing data after offset"),
    "bad-token": (nar(s("[") + s("type")), "expected '(' at offset 24, got '['"),
    "deep": (s("nix-archive-1") + (s("(") + s("type") + s("directory") + s("entry") + s("(") + s("name") + s("d") + s("node")) * 300,
             "nesting deeper than 256 levels"),
}

STORE = "/nix/store/"
H = "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qb"
NH = "sha256:1ifd8rk9ppf0yglyhpbyvhagq2gz6xjzpa7rp0mfdc9i8hy2ywk7"
BASE = {
    "StorePath": STORE + H + "-hello-2.12",
    "URL": "nar/abc.nar.xz",
    "Compression": "xz",
    "NarHash": NH,
    "NarSize": "123",
    "References": H + "-hello-2.12",
}


def narinfo(**changes):
    fields = dict(BASE)
    for k, v in changes.items():
        if v is None:
            fields.pop(k, None)
        else:
            fields[k] = v
    return "".join(f"{k}: {v}\n" for k, v in fields.items()).encode()


NARINFOS = {
    "missing-storepath": (narinfo(StorePath=None), "the mandatory field StorePath is missing"),
    "missing-narhash": (narinfo(NarHash=None), "the mandatory field NarHash is missing"),
    "missing-url": (narinfo(URL=None), "the mandatory field URL is missing"),
    "missing-narsize": (narinfo(NarSize=None), "the mandatory field NarSize is missing"),
    "zero-narsize": (narinfo(NarSize="0"), "NarSize is 0"),
    "negative-narsize": (narinfo(NarSize="-1"), "NarSize '-1' is not a decimal number"),
    "bad-hash-length": (narinfo(NarHash="sha256:1ifd8rk9ppf0yglyhpbyvhagq2gz6"), "has length 29"),
    "bad-nix32-char": (narinfo(NarHash=NH[:-1] + "e"), "invalid nix32 digest"),
    "bad-hash-algo": (narinfo(NarHash="md5:" + "0" * 32), "only sha256 is supported"),
    "no-hash-algo": (narinfo(NarHash=NH[7:]), "does not name its algorithm"),
    "bad-storepath-char": (narinfo(StorePath=STORE + "0c5ykcv9xf0v3y41ic79ndw8ngq5s0qe-hello"), "outside nix32"),
    "storepath-outside-store": (narinfo(StorePath="/tmp/" + H + "-hello"), "not in the store directory"),
    "bad-reference": (narinfo(References="not-a-path"), "References: invalid store path 'not-a-path'"),
    "illegal-name-char": (narinfo(References=H + "-he@llo"), "the name contains the illegal character '@'"),
    "duplicate-references": (narinfo() + b"References: " + H.encode() + b"-x\n", "References appears twice"),
    "no-colon": (narinfo() + b"garbage line\n", "line 7 ('garbage line') is not 'Key: value'"),
    "binary-garbage": (b"\x00\xff\xfe", "is not 'Key: value'"),
    "duplicate-ca": (narinfo(CA="fixed:r:" + NH) + b"CA: fixed:r:" + NH.encode() + b"\n", "CA appears twice"),
    "bad-filesize": (narinfo(FileSize="12x"), "FileSize '12x' is not a decimal number"),
    "huge-narsize": (narinfo(NarSize="99999999999999999999999"), "is not a decimal number"),
    "bad-deriver": (narinfo(Deriver="x.drv"), "Deriver: invalid store path"),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name in os.listdir(HERE):
        os.remove(os.path.join(HERE, name))
    for table, ext in ((NARS, "nar"), (NARINFOS, "narinfo")):
        for name, (data, expected) in table.items():
            with open(os.path.join(HERE, f"{name}.{ext}"), "wb") as f:
                f.write(data)
            with open(os.path.join(HERE, f"{name}.expected"), "w") as f:
                f.write(expected + "\n")


if __name__ == "__main__":
    main()
