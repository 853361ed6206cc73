#!/usr/bin/env bash
# The release binaries really carry the hardening the build asks for: PIE, full RELRO
# (RELRO segment + BIND_NOW), a non-executable stack, the stack protector and
# _FORTIFY_SOURCE's checked functions. A flag lost in the build fails here.
source "$(dirname "$0")/lib.sh"

for bin in "$IOTSEC_BUILD_DIR/iotsec"; do
    name=$(basename "$bin")
    expect_contains "$name is position independent" "$(readelf -h "$bin")" "DYN (Position-Independent Executable file)"
    dyn=$(readelf -d "$bin")
    expect_contains "$name binds now" "$dyn" "BIND_NOW"
    expect_contains "$name is PIE (FLAGS_1)" "$dyn" "PIE"
    segs=$(readelf -lW "$bin")
    expect_contains "$name has a RELRO segment" "$segs" "GNU_RELRO"
    stack=$(echo "$segs" | grep GNU_STACK)
    expect_eq "$name stack is not executable" "$(echo "$stack" | awk '{print $7}')" "RW"
    syms=$(readelf -sW --dyn-syms "$bin")
    expect_contains "$name uses the stack protector" "$syms" "__stack_chk_fail"
    expect_contains "$name uses fortified libc calls" "$syms" "_chk@"
done
finish
