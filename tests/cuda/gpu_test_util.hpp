// Shared by the GPU test files: the precondition that skips a suite visibly when there is no device.
#pragma once

#include <boost/test/unit_test.hpp>

#include <string>

#ifdef GDNV_HAVE_CUDA
#include "cuda/gdn_cuda.hpp"
#endif

namespace gdnv::test {

struct has_gpu {
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
#ifdef GDNV_HAVE_CUDA
    std::string why;
    if (gdn_cuda::device_count(&why) > 0) return true;
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device (" << why << ")";
    return r;
#else
    boost::test_tools::assertion_result r(false);
    r.message() << "no CUDA device (built without CUDA)";
    return r;
#endif
  }
};

}  // namespace gdnv::test
