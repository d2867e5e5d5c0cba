#!/usr/bin/env bash
# The two-phase merge schedule (cuda/inverse_tc.cuh merge_blocks_two_phase, a probe candidate written in the
# sixteenth session without device time left) against the library's three phases, in one probe binary: kernel time
# alternated at 6 blocks per SM and whether A_inv is byte-equal (it must be: the same products into the same
# accumulators), then the probe's phase stamps and ablations for context. If it wins: make it merge_blocks (the
# kernels kkt_solve_fused 5 and intra_fused 3 use it), run the whole GPU suite, racecheck gpu_tc/ragged_G2 (named
# barriers), and bench.
source "$(dirname "$0")/device-common.sh"
device_start merge gdnv_inverse_probe
P=$(find $B -name gdnv_inverse_probe -type f | head -1)
timeout 200 $P --T 8192 > $R/probe-$GPU-$SHA.txt 2>&1; echo "probe exit $?"
sed -n "/schedule candidates/,\$p" $R/probe-$GPU-$SHA.txt
echo "all $(( $(date +%s) - t0 )) s"; pack
