#!/usr/bin/env bash
# The whole GPU suite from a test_cuda built here and carried (.device/bin/test_cuda.xz, with the shared libraries
# the device image lacks in .device/lib), racecheck + memcheck of TEST, while `gdnv` builds there in the background
# (it links HDF5 and friends, so it is built on the device); then `gdnv bench` on the idle machine. Saves the
# test binary's build (~80 s of device time) from a run that must fit a short lease. (device-carried-ab.sh without
# its A/B stages.)
#   SHA=<tree> TEST=gpu_tc/ragged_G2 bash scripts/device-carried-tests.sh
AB=0 exec bash "$(dirname "$0")/device-carried-ab.sh"
