# One CTest test per Boost.Test case, discovered after each build from `--list_content`
# (the pattern of gtest_discover_tests, which CMake only offers for GoogleTest).
#
#   gdnv_discover_boost_tests(TARGET LABELS label... [SKIP_REGEX regex])
#
# A case skipped by its precondition (e.g. no GPU) prints "skipped because precondition failed";
# ctest then reports it as "(Skipped)" instead of passed.

set(_GDNV_DISCOVER_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/BoostTestDiscoverScript.cmake")

function(gdnv_discover_boost_tests target)
  cmake_parse_arguments(ARG "" "" "LABELS" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${target}_tests.cmake")
  add_custom_command(
    TARGET ${target} POST_BUILD
    COMMAND "${CMAKE_COMMAND}" -D "TEST_EXE=$<TARGET_FILE:${target}>" -D "TARGET=${target}"
            -D "OUT=${out}" -D "LABELS=${ARG_LABELS}"
            -D "WORKDIR=${PROJECT_SOURCE_DIR}"
            -P "${_GDNV_DISCOVER_SCRIPT}"
    BYPRODUCTS "${out}"
    VERBATIM)
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${out}")
endfunction()
