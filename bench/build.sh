#!/bin/sh
# Build bench/loadgen (no dependencies beyond gcc and libc) and check its MD5 and HMAC-SHA256
# against Python's hashlib/hmac, since every HTTP API request it sends is signed with them.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gcc -O2 -Wall -Wextra -Wno-sign-compare -o "$here/loadgen" "$here/loadgen.c" -lm
python=${PYTHON:-python3}
"$here/loadgen" --self-test | "$python" -c '
import hashlib, hmac, sys
msgs = [b"", b"abc", b"The quick brown fox jumps over the lazy dog",
        b"0123456789012345678901234567890123456789012345678901234567890123456789"]
want = []
for m in msgs:
    want.append("md5 " + hashlib.md5(m).hexdigest())
    want.append("hmac " + hmac.new(b"bench-secret", m, hashlib.sha256).hexdigest())
got = sys.stdin.read().split("\n")[:-1]
if got != want:
    sys.exit("loadgen self-test FAILED:\n" + "\n".join(got) + "\nexpected:\n" + "\n".join(want))
print("loadgen: built, self-test ok")
'
