#!/usr/bin/env bash
# The sixteenth session's probe candidates (written without device time left; cuda/inverse_tc.cuh): the two-phase
# merge schedule (merge_blocks_two_phase), each warp inverting the diagonal block it gated without the gate's block
# barrier (kOwnDiag), and both, against the library, in one probe binary: kernel time alternated at 6 blocks per SM
# and whether A_inv is byte-equal (it must be: the same products into the same accumulators), then the probe's phase
# stamps and ablations for context. If one wins: make it the library's (kkt_solve_fused 5 and intra_fused 3 share
# inverse_tc), run the whole GPU suite, racecheck gpu_tc/ragged_G2 (named barriers, the warp-local handoff), bench.
source "$(dirname "$0")/device-common.sh"
device_start merge gdnv_inverse_probe
P=$(find $B -name gdnv_inverse_probe -type f | head -1)
timeout 200 $P --T 8192 > $R/probe-$GPU-$SHA.txt 2>&1; echo "probe exit $?"
sed -n "/schedule candidates/,\$p" $R/probe-$GPU-$SHA.txt
echo "all $(( $(date +%s) - t0 )) s"; pack
