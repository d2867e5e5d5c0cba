// The test module's entry point; the cases live in the module folders.
#define BOOST_TEST_MODULE gdnv
#include <boost/test/unit_test.hpp>
