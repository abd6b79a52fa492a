#!/bin/bash -eu
# ClusterFuzzLite entry: the project's own OSS-Fuzz build script.
exec "$SRC/ringward/fuzz/build.sh"
