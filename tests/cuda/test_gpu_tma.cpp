// GPU self-checks of the TMA path behind state_output_fused 4 (cuda/tma_check.cu; label gpu, skipped visibly
// without a device): a TMA box lies in shared memory as the 128-byte swizzle formula says, rows past the tensor's
// end arrive as zeros, and wgmma products with swizzled K-major and MN-major operands equal, word for word, the
// same products from variant 3's no-swizzle layouts (small exact values: any summation order gives the same words).
#include <boost/test/unit_test.hpp>

#include "cuda/gpu_test_util.hpp"

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace utf = boost::unit_test;

BOOST_AUTO_TEST_SUITE(gpu_tma, *utf::label("gpu") * utf::precondition(gdnv::test::has_gpu{}))

#ifdef GDNV_HAVE_CUDA
BOOST_AUTO_TEST_CASE(swizzle_zero_fill_and_descriptors) {
  gdn_cuda::TmaCheck const r = gdn_cuda::tma_selfcheck();
  BOOST_TEST(r.tile_mismatches == 0);
  BOOST_TEST(r.zero_fill_mismatches == 0);
  BOOST_TEST(r.kmajor_product_mismatches == 0);
  BOOST_TEST(r.mnmajor_product_mismatches == 0);
}
#endif

BOOST_AUTO_TEST_SUITE_END()
