#!/bin/bash -eu
# ClusterFuzzLite entry (copied to $SRC/build.sh by the Dockerfile): the
# project's own OSS-Fuzz build script, so both services build alike.
exec "$SRC/ringward/fuzz/build.sh"
